import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { acceptOnly } from '../plugins/formbody.js'
import { changePassword, deleteAccount } from '../src/accounts/lifecycle.js'
import {
  authenticationProblems, commonProblems, json, problem, reauthenticationProblems, ref, STRICT_AUTH, unavailableProblem
} from '../src/schemas/components.js'
import { NoContent } from '../src/schemas/problems.js'

/** Runs before validation, so the length policy applies to the password that will be hashed. */
async function normaliseNewPassword (request: FastifyRequest) {
  const body = request.body as Record<string, unknown> | null
  if (body !== null && typeof body === 'object' && typeof body.new_password === 'string') {
    body.new_password = body.new_password.normalize('NFC')
  }
}

const bodyProblems = {
  413: problem('The body is larger than 16 KiB.'),
  415: problem('The body is not JSON.')
}

const account: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/users/me/password', {
    onRequest: acceptOnly('application/json'),
    preValidation: normaliseNewPassword,
    preHandler: fastify.authenticate,
    schema: {
      operationId: 'changePassword',
      tags: ['account'],
      summary: 'Change the password; every other session ends',
      description: 'Needs the current password. Every session of the user ends — refresh tokens revoked, access tokens refused at once on every instance — and the answer is a fresh token pair, as from `POST /token`, for the caller to go on with. Of two concurrent changes one wins; the other answers 403.',
      security: STRICT_AUTH,
      body: ref('ChangePasswordBody'),
      response: {
        200: json('TokenResponse', 'Changed. The caller\'s new tokens; every earlier token of the account is refused from now on.', {
          'Cache-Control': Type.String({ description: 'no-store' }),
          Pragma: Type.String({ description: 'no-cache' })
        }),
        ...authenticationProblems,
        400: problem('A repeated Authorization header, or a body that is not acceptable: the new password is outside the policy (8 to 128 characters, not a common one) or equals the current one; `errors` says which and why.'),
        ...bodyProblems,
        ...commonProblems,
        ...reauthenticationProblems,
        ...unavailableProblem
      }
    }
  }, async (request, reply) => {
    const { current_password: current, new_password: next } = request.body
    const tokens = await changePassword(fastify, request.user!, current, next, request)
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
    return {
      access_token: tokens.accessToken,
      token_type: 'Bearer' as const,
      expires_in: tokens.expiresIn,
      refresh_token: tokens.refreshToken
    }
  })

  fastify.delete('/users/me', {
    onRequest: acceptOnly('application/json'),
    preHandler: fastify.authenticate,
    schema: {
      operationId: 'deleteCurrentUser',
      tags: ['account'],
      summary: 'Delete the account',
      description: 'Needs the current password. The account and everything kept for it (sessions, refresh tokens, security events, pending emails) are deleted; every token of it is refused at once, and the email can sign up again.',
      security: STRICT_AUTH,
      body: ref('DeleteAccountBody'),
      response: {
        204: NoContent('The account is gone.'),
        ...authenticationProblems,
        400: problem('A repeated Authorization header, or a body without `current_password`; `errors` says what is wrong.'),
        ...bodyProblems,
        ...commonProblems,
        ...reauthenticationProblems,
        ...unavailableProblem
      }
    }
  }, async (request, reply) => {
    await deleteAccount(fastify, request.user!, request.body.current_password, request)
    return reply.code(204).send()
  })
}

export default account
