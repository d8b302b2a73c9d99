#ifndef HERALD_CCURL_SHIMS_H
#define HERALD_CCURL_SHIMS_H

#include <curl/curl.h>

/// Fixed-type wrappers for curl's variadic setters and getters, which Swift cannot call.
/// One function per argument type; each returns curl's own result code.

CURLcode herald_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode herald_easy_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode herald_easy_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode herald_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);
CURLcode herald_easy_setopt_write_callback(CURL *handle,
    size_t (*callback)(char *, size_t, size_t, void *));

CURLcode herald_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode herald_easy_getinfo_double(CURL *handle, CURLINFO info, double *value);
CURLcode herald_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value);

CURLMcode herald_multi_setopt_long(CURLM *multi, CURLMoption option, long value);

#endif
