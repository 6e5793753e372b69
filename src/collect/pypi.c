/* pypi.c — see pypi.h. */
#include "collect/pypi.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "config/settings.h"
#include "util/log.h"
#include "util/pep440.h"

char *pkg_normalize(const char *name)
{
	sb_t o = SB_INIT;
	for (const char *p = name; *p; p++) {
		if (*p == '-' || *p == '_' || *p == '.') {
			while (p[1] == '-' || p[1] == '_' || p[1] == '.')
				p++;
			sb_addc(&o, '-');
			continue;
		}
		sb_addc(&o, (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p));
	}
	return sb_detach(&o);
}

static size_t on_data(char *ptr, size_t size, size_t n, void *ud)
{
	sb_add(ud, ptr, size * n);
	return size * n;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int pypi_resolve(const char *name, const char *version, char **out, sb_t *msg)
{
	char *norm = pkg_normalize(name);
	const char *base = settings_raw("FRACTAL_PYPI_SIMPLE_URL");
	if (!base || !*base)
		base = "https://pypi.org/simple";
	size_t blen = strlen(base);
	while (blen && base[blen - 1] == '/')
		blen--;
	sb_t url = SB_INIT, body = SB_INIT, hint = SB_INIT;
	sb_addf(&url, "%.*s/%s/", (int)blen, base, norm);
	sb_addf(&hint, "Hint: specify the required version for '%s'.", name);
	free(norm);
	int rc = -1;
	json_t *doc = NULL;
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/vnd.pypi.simple.v1+json");
	char cerr[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_URL, url.buf);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	CURLcode cc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	if (cc == CURLE_OPERATION_TIMEDOUT) {
		sb_addf(msg, "A TimeoutException occurred while getting %s.\nOriginal error: %s.", url.buf,
			cerr[0] ? cerr : curl_easy_strerror(cc));
		log_warning("%s", msg->buf);
		goto out;
	}
	if (cc != CURLE_OK) {
		sb_addf(msg, "An unknown error occurred while getting %s. Original error: %s.", url.buf,
			cerr[0] ? cerr : curl_easy_strerror(cc));
		log_warning("%s", msg->buf);
		goto out;
	}
	if (status != 200) {
		sb_addf(msg, "Could not get %s (status_code %ld).\n%s", url.buf, status, hint.buf);
		goto out;
	}
	doc = json_loadb(body.buf, body.len, 0, NULL);
	json_t *versions = json_object_get(doc, "versions");
	if (!json_is_array(versions)) {
		/* upstream: a KeyError for a missing key (a body that is not JSON
		 * would be a 500 there) */
		sb_addf(msg, "A KeyError error occurred while getting %s.\n%s", url.buf, hint.buf);
		goto out;
	}
	size_t n = json_array_size(versions);
	const char *latest = NULL;
	pep440_t best = { 0 };
	for (size_t i = 0; i < n; i++) {
		const char *v = json_string_value(json_array_get(versions, i));
		pep440_t pv;
		if (!v || pep440_parse(v, &pv)) {
			sb_addf(msg, "Cannot find latest version (original error: Invalid version: '%s').", v ? v : "");
			goto out;
		}
		if (!latest || pep440_cmp(&pv, &best) > 0) {
			latest = v;
			best = pv;
		}
	}
	if (!latest) {
		sb_addf(msg, "Cannot find latest version (original error: no versions listed at %s).", url.buf);
		goto out;
	}
	log_info("Obtained data from %s: %zu releases, latest=%s.", url.buf, n, latest);
	if (!version) {
		*out = strdup(latest);
		rc = 0;
		goto out;
	}
	const char **match = malloc(n * sizeof(char *));
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		const char *v = json_string_value(json_array_get(versions, i));
		if (!strcmp(v, version)) {
			*out = strdup(v);
			free(match);
			rc = 0;
			goto out;
		}
		if (!strncmp(v, version, strlen(version)))
			match[m++] = v;
	}
	if (!m) {
		sb_addf(msg, "No version starting with %s found.\n%s", version, hint.buf);
	} else {
		qsort(match, m, sizeof(char *), str_cmp);
		*out = strdup(match[m - 1]);
		rc = 0;
	}
	free(match);
out:
	json_decref(doc);
	sb_release(&url);
	sb_release(&body);
	sb_release(&hint);
	return rc;
}
