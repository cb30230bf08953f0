/* challenge_http.c - not written yet */
