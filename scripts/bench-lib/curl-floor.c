/*
 * curl-floor: the floor for Herald's HTTP side. A bare libcurl multi loop that POSTs
 * REQUESTS bodies of BODY_BYTES to URL with at most CONCURRENCY transfers in flight
 * (HTTP/1.1 keep-alive, CURLMOPT_MAXCONNECTS = CONCURRENCY, curl_multi_poll), shaped like
 * Herald's requests: the same headers, a reused easy handle reset before each request,
 * TCP_NODELAY, NOSIGNAL, a timeout, the response body read and dropped.
 *
 * Prints one JSON object: request counts, wall seconds, requests/s and the process's own
 * CPU time (getrusage RUSAGE_SELF at the end, so setup is included: a few milliseconds).
 * Exits 1 if not every request got a 2xx before MAX_SECONDS.
 *
 *   curl-floor URL REQUESTS CONCURRENCY BODY_BYTES [MAX_SECONDS]
 *
 * Built by scripts/bench: cc -O2 curl-floor.c $(pkg-config --cflags --libs libcurl)
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct slot {
    CURL *easy;
    struct curl_slist *headers;
    char id[96];
    char timestamp[48];
};

static double monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double seconds_of(struct timeval tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

static size_t discard(char *data, size_t size, size_t count, void *context) {
    (void)data;
    (void)context;
    return size * count;
}

static long parse_long(const char *text, const char *name, long minimum) {
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (end == text || *end != '\0' || value < minimum) {
        fprintf(stderr, "curl-floor: %s must be an integer >= %ld, got '%s'\n", name, minimum, text);
        exit(2);
    }
    return value;
}

/* A JSON object of exactly `size` bytes (at least 12). */
static char *make_body(long size) {
    static const char head[] = "{\"pad\":\"";
    static const char tail[] = "\"}";
    long fill = size - (long)(sizeof head - 1) - (long)(sizeof tail - 1);
    if (fill < 0) fill = 0;
    char *body = malloc(sizeof head + fill + sizeof tail);
    if (!body) exit(1);
    char *p = body;
    memcpy(p, head, sizeof head - 1), p += sizeof head - 1;
    memset(p, 'x', fill), p += fill;
    memcpy(p, tail, sizeof tail);
    return body;
}

static void start(CURLM *multi, struct slot *slot, const char *url, const char *body, long body_bytes,
                  long number) {
    curl_easy_reset(slot->easy);
    curl_slist_free_all(slot->headers);
    snprintf(slot->id, sizeof slot->id, "webhook-id: 7f3c2a10-0000-4000-8000-%012ld", number);
    snprintf(slot->timestamp, sizeof slot->timestamp, "webhook-timestamp: %ld", (long)time(NULL));
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "User-Agent: curl-floor");
    headers = curl_slist_append(headers, slot->id);
    headers = curl_slist_append(headers, slot->timestamp);
    headers = curl_slist_append(headers, "Expect:");
    slot->headers = headers;
    CURL *easy = slot->easy;
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_bytes);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, slot);
    curl_multi_add_handle(multi, easy);
}

int main(int argc, char **argv) {
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: curl-floor URL REQUESTS CONCURRENCY BODY_BYTES [MAX_SECONDS]\n");
        return 2;
    }
    const char *url = argv[1];
    long requests = parse_long(argv[2], "REQUESTS", 1);
    long concurrency = parse_long(argv[3], "CONCURRENCY", 1);
    long body_bytes = parse_long(argv[4], "BODY_BYTES", 12);
    long max_seconds = argc == 6 ? parse_long(argv[5], "MAX_SECONDS", 1) : 120;
    if (concurrency > requests) concurrency = requests;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    char *body = make_body(body_bytes);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, concurrency);
    struct slot *slots = calloc(concurrency, sizeof *slots);
    if (!slots) return 1;

    long started = 0, done = 0, ok = 0, failed = 0;
    double t0 = monotonic();
    double deadline = t0 + max_seconds;
    for (long i = 0; i < concurrency; i++) {
        slots[i].easy = curl_easy_init();
        start(multi, &slots[i], url, body, body_bytes, started++);
    }
    int timed_out = 0;
    while (done < requests) {
        if (monotonic() > deadline) {
            timed_out = 1;
            break;
        }
        int running = 0;
        curl_multi_perform(multi, &running);
        int added = 0, left = 0;
        CURLMsg *message;
        while ((message = curl_multi_info_read(multi, &left))) {
            if (message->msg != CURLMSG_DONE) continue;
            CURL *easy = message->easy_handle;
            struct slot *slot = NULL;
            long code = 0;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&slot);
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
            if (message->data.result == CURLE_OK && code >= 200 && code < 300) {
                ok++;
            } else {
                if (failed < 5)
                    fprintf(stderr, "curl-floor: request failed: %s (HTTP %ld)\n",
                            curl_easy_strerror(message->data.result), code);
                failed++;
            }
            curl_multi_remove_handle(multi, easy);
            done++;
            if (started < requests) {
                start(multi, slot, url, body, body_bytes, started++);
                added = 1;
            }
        }
        /* New transfers go straight to curl_multi_perform: polling first could sleep. */
        if (!added && done < requests) curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    double seconds = monotonic() - t0;

    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double user = seconds_of(usage.ru_utime), sys = seconds_of(usage.ru_stime);
    printf("{\"requests\": %ld, \"done\": %ld, \"ok\": %ld, \"failed\": %ld, \"timed_out\": %s, "
           "\"concurrency\": %ld, \"body_bytes\": %ld, \"seconds\": %.4f, \"req_per_s\": %.1f, "
           "\"cpu_user_s\": %.4f, \"cpu_sys_s\": %.4f, \"cpu_us_per_req\": %.2f}\n",
           requests, done, ok, failed, timed_out ? "true" : "false", concurrency, body_bytes, seconds,
           seconds > 0 ? done / seconds : 0.0, user, sys, done > 0 ? (user + sys) * 1e6 / done : 0.0);

    for (long i = 0; i < concurrency; i++) {
        curl_multi_remove_handle(multi, slots[i].easy);
        curl_easy_cleanup(slots[i].easy);
        curl_slist_free_all(slots[i].headers);
    }
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    free(slots);
    free(body);
    return (ok == requests) ? 0 : 1;
}
