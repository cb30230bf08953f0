/* http.c - not written yet */
typedef int http_placeholder_t;
