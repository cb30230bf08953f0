/* challenge_http.c - not written yet */
typedef int challenge_http_placeholder_t;
