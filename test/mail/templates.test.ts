import t from 'tap'
import { escapeHtml } from '../../src/html.js'
import { emailVerificationEmail, linkFor, passwordResetEmail } from '../../src/mail/templates.js'

t.test('escapeHtml escapes the five characters that matter in content and quoted attributes', async t => {
  t.equal(escapeHtml('<a href="x" onclick=\'y\'>&amp;</a>'), '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;')
})

t.test('linkFor puts the token, URL-encoded, wherever {token} stands', async t => {
  t.equal(linkFor('https://app.example/reset?token={token}', 'abc_-9'), 'https://app.example/reset?token=abc_-9')
  t.equal(linkFor('https://app.example/#/reset/{token}?again={token}', 'a b&c'), 'https://app.example/#/reset/a%20b%26c?again=a%20b%26c')
})

t.test('the emails: a text and an HTML part, the link in both, everything in the HTML escaped', async t => {
  const link = 'https://app.example/reset?token=abc&x="1"'
  const reset = passwordResetEmail('o\'brien<script>@example.com', link, 1800)
  t.equal(reset.subject, 'Reset your password')
  t.match(reset.text, /Choose a new password:\nhttps:\/\/app\.example\/reset\?token=abc&x="1"\n/)
  t.match(reset.text, /The link works once, for 30 minutes\./)
  t.ok(reset.html.includes('href="https://app.example/reset?token=abc&amp;x=&quot;1&quot;"'), 'the href is escaped')
  t.notOk(reset.html.includes('<script>'), 'the address is escaped')
  t.ok(reset.html.includes('o&#39;brien&lt;script&gt;@example.com'))

  const verify = emailVerificationEmail('ada@example.com', 'https://x/verify?token=t', 86_400)
  t.equal(verify.subject, 'Verify your email address')
  t.match(verify.text, /for 24 hours\./)
  t.match(verify.html, /<a href="https:\/\/x\/verify\?token=t">Verify my email address<\/a>/)
  t.match(emailVerificationEmail('a@b.c', 'l', 3600).text, /for 1 hour\./)
})
