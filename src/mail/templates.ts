import { escapeHtml } from '../html.js'

export interface RenderedEmail {
  subject: string
  text: string
  html: string
}

interface Content {
  subject: string
  /** Paragraphs before the link. */
  intro: string[]
  action: string
  /** Paragraphs after the link. */
  outro: string[]
}

/** The link is the only place the token appears: in the text part and in the HTML part's href and text. */
function render ({ subject, intro, action, outro }: Content, link: string): RenderedEmail {
  const text = [...intro, `${action}:\n${link}`, ...outro].join('\n\n') + '\n'
  const paragraphs = (lines: string[]) => lines.map(line => `<p>${escapeHtml(line)}</p>`).join('\n')
  const html = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head>
<body style="font-family: system-ui, sans-serif; line-height: 1.5; max-width: 36em">
${paragraphs(intro)}
<p><a href="${escapeHtml(link)}">${escapeHtml(action)}</a></p>
<p style="font-size: 0.9em; color: #555">If the button does not work, copy this address into your browser:<br>${escapeHtml(link)}</p>
${paragraphs(outro)}
</body>
</html>
`
  return { subject, text, html }
}

function duration (seconds: number): string {
  if (seconds % 3600 === 0) return seconds === 3600 ? '1 hour' : `${seconds / 3600} hours`
  const minutes = Math.round(seconds / 60)
  return minutes === 1 ? '1 minute' : `${minutes} minutes`
}

export function passwordResetEmail (email: string, link: string, ttlSeconds: number): RenderedEmail {
  return render({
    subject: 'Reset your password',
    intro: [`Someone asked to reset the password of the account ${email}. If it was you, choose a new password with the link below.`],
    action: 'Choose a new password',
    outro: [
      `The link works once, for ${duration(ttlSeconds)}. Resetting the password signs the account out everywhere.`,
      'If you did not ask for this, ignore this email: your password stays as it is.'
    ]
  }, link)
}

export function emailVerificationEmail (email: string, link: string, ttlSeconds: number): RenderedEmail {
  return render({
    subject: 'Verify your email address',
    intro: [`Please confirm that ${email} is your email address.`],
    action: 'Verify my email address',
    outro: [
      `The link works once, for ${duration(ttlSeconds)}.`,
      'If you did not create an account, ignore this email.'
    ]
  }, link)
}

/** The link of a URL template (`{token}` replaced, URL-encoded). */
export function linkFor (template: string, token: string): string {
  return template.replaceAll('{token}', encodeURIComponent(token))
}
