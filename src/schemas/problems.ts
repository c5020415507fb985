import { Type, type Static } from '@sinclair/typebox'

/** @see https://www.rfc-editor.org/rfc/rfc9457#section-3 */
export const Problem = Type.Object({
  type: Type.String({ examples: ['about:blank'] }),
  title: Type.String(),
  status: Type.Integer({ minimum: 400, maximum: 599 }),
  detail: Type.String(),
  errors: Type.Optional(Type.Array(Type.Object({
    field: Type.String(),
    message: Type.String()
  })))
})
export type Problem = Static<typeof Problem>

/** A response without a body: nothing is serialised, and the type lets handlers send nothing. */
export const NoContent = (description: string) => Type.Unsafe<undefined>({ type: 'null', description })
