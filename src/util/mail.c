/* mail.c — see mail.h.
 *
 * The message is the one Python's EmailMessage builds for upstream: a
 * text/plain UTF-8 body, 7bit when every line is ASCII and at most 78
 * characters, else quoted-printable; From and To as formataddr() writes an
 * address whose display name is the address itself ("a@b" <a@b>). libcurl
 * speaks SMTP: EHLO, STARTTLS when asked (like smtplib's starttls() without
 * a context, the server's certificate is not verified), AUTH with the
 * sender as user name when login is on, then MAIL, RCPT per recipient,
 * DATA (libcurl escapes leading dots). */
#include "util/mail.h"

#include <curl/curl.h>
#include <string.h>

#include "config/settings.h"
#include "util/log.h"

static const char LOGGER[] = "fractal_server.send_mail";

static int ascii_short_lines(const char *s)
{
	size_t col = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p >= 0x80)
			return 0;
		col = *p == '\n' ? 0 : col + 1;
		if (col > 78)
			return 0;
	}
	return 1;
}

/* quoted-printable (RFC 2045), soft breaks before column 76 */
static void add_qp(sb_t *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\n') {
			sb_adds(out, "\r\n");
			col = 0;
			continue;
		}
		int last = p[1] == '\n' || p[1] == '\0';
		int plain = *p >= 33 && *p <= 126 && *p != '=';
		if ((*p == ' ' || *p == '\t') && !last)
			plain = 1;
		size_t w = plain ? 1 : 3;
		if (col + w > 75) {
			sb_adds(out, "=\r\n");
			col = 0;
		}
		if (plain) {
			sb_addc(out, (char)*p);
		} else {
			sb_addc(out, '=');
			sb_addc(out, hex[*p >> 4]);
			sb_addc(out, hex[*p & 15]);
		}
		col += w;
	}
}

static void add_header_text(sb_t *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p >= 0x80 || *p < 0x20) {
			/* RFC 2047 encoded word, base64 */
			static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
			size_t n = strlen(s);
			sb_adds(out, "=?utf-8?b?");
			for (size_t i = 0; i < n; i += 3) {
				unsigned v = (unsigned char)s[i] << 16;
				if (i + 1 < n)
					v |= (unsigned char)s[i + 1] << 8;
				if (i + 2 < n)
					v |= (unsigned char)s[i + 2];
				sb_addc(out, b64[v >> 18 & 63]);
				sb_addc(out, b64[v >> 12 & 63]);
				sb_addc(out, i + 1 < n ? b64[v >> 6 & 63] : '=');
				sb_addc(out, i + 2 < n ? b64[v & 63] : '=');
			}
			sb_adds(out, "?=");
			return;
		}
	sb_adds(out, s);
}

static void add_addr(sb_t *out, const char *a, size_t n)
{
	sb_addf(out, "\"%.*s\" <%.*s>", (int)n, a, (int)n, a);
}

void mail_format(sb_t *out, const char *subject, const char *text)
{
	int seven = ascii_short_lines(text);
	sb_addf(out, "Content-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: %s\r\n"
		     "MIME-Version: 1.0\r\nFrom: ", seven ? "7bit" : "quoted-printable");
	add_addr(out, settings.email_sender, strlen(settings.email_sender));
	sb_adds(out, "\r\nTo: ");
	const char *r = settings.email_recipients;
	for (int first = 1; *r; first = 0) {
		size_t n = strcspn(r, ",");
		if (!first)
			sb_adds(out, ", ");
		add_addr(out, r, n);
		r += n + (r[n] == ',');
	}
	sb_adds(out, "\r\nSubject: ");
	sb_t subj = SB_INIT;
	sb_addf(&subj, "[Fractal, %s] %s", settings.email_instance_name, subject);
	add_header_text(out, subj.buf);
	sb_release(&subj);
	sb_adds(out, "\r\n\r\n");
	if (seven) {
		for (const char *p = text; *p; p++) {
			if (*p == '\n')
				sb_addc(out, '\r');
			sb_addc(out, *p);
		}
	} else {
		add_qp(out, text);
	}
	if (!out->len || out->buf[out->len - 1] != '\n')
		sb_adds(out, "\r\n");
}

struct upload { const char *data; size_t left; };

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct upload *u = arg;
	size_t k = size * n < u->left ? size * n : u->left;
	memcpy(buf, u->data, k);
	u->data += k;
	u->left -= k;
	return k;
}

void mail_notify(const char *subject, const char *text)
{
	if (!settings.email_set) {
		log_msg(LOG_ERROR, LOGGER, "Cannot send email with subject='%s', because email_settings=None.", subject);
		return;
	}
	log_msg(LOG_INFO, LOGGER, "START sending email with subject='%s'.", subject);
	sb_t msg = SB_INIT, url = SB_INIT, from = SB_INIT;
	mail_format(&msg, subject, text);
	sb_addf(&url, "smtp://%s:%lld", settings.email_smtp_server, (long long)settings.email_smtp_port);
	sb_addf(&from, "<%s>", settings.email_sender);
	struct curl_slist *rcpt = NULL;
	for (const char *r = settings.email_recipients; *r;) {
		size_t n = strcspn(r, ",");
		sb_t one = SB_INIT;
		sb_addf(&one, "<%.*s>", (int)n, r);
		rcpt = curl_slist_append(rcpt, one.buf);
		sb_release(&one);
		r += n + (r[n] == ',');
	}
	struct upload up = { msg.buf, msg.len };
	char cerr[CURL_ERROR_SIZE] = "";
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url.buf);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.buf);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &up);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	if (settings.email_use_starttls) {
		curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (settings.email_use_login) {
		curl_easy_setopt(c, CURLOPT_USERNAME, settings.email_sender);
		curl_easy_setopt(c, CURLOPT_PASSWORD, settings.email_password ? settings.email_password : "");
	}
	CURLcode cc = curl_easy_perform(c);
	if (cc == CURLE_OK)
		log_msg(LOG_INFO, LOGGER, "END sending email with subject='%s'.", subject);
	else
		log_msg(LOG_ERROR, LOGGER, "Could not send self-registration email, original error: %s.",
			cerr[0] ? cerr : curl_easy_strerror(cc));
	curl_easy_cleanup(c);
	curl_slist_free_all(rcpt);
	sb_release(&msg);
	sb_release(&url);
	sb_release(&from);
}
