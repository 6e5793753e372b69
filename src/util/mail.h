/* mail.h — upstream's notices to the admins (send_mail.py): one plain-text
 * message from FRACTAL_EMAIL_SENDER to every FRACTAL_EMAIL_RECIPIENTS
 * address, subject "[Fractal, <FRACTAL_EMAIL_INSTANCE_NAME>] <subject>",
 * over SMTP through libcurl, with STARTTLS and login as the settings say.
 *
 * Sending never fails the caller: without e-mail settings, or when the SMTP
 * server cannot be reached or refuses, the reason is logged as an error and
 * the call returns. It reads `settings`, so the e-mail group must have been
 * loaded (settings_load(SETTINGS_EMAIL)). Blocking, as upstream's: a few
 * round trips to the SMTP server, bounded by a 30-second timeout. */
#ifndef MAIL_H
#define MAIL_H

#include "util/sb.h"

void mail_notify(const char *subject, const char *text);

/* The message as sent (headers and body, CRLF line ends), appended to out;
 * for mail_notify() and its tests. */
void mail_format(sb_t *out, const char *subject, const char *text);

#endif
