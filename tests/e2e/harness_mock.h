/*
 * The e2e harness: the mock PSP's control API (tests/mock_psp).
 */
#ifndef E2E_HARNESS_MOCK_H
#define E2E_HARNESS_MOCK_H



/* -- the mock PSP ------------------------------------------------------------- */

/* POST to the mock at path (its control API, or a PSP's path) with this
 * JSON body (NULL: none); the answer, the caller's to free. */
resp_t  *mock_post(const char *path, const char *json);

/* POST /_control/faults with this JSON object; returns the rule's id. */
long     mock_fault(const char *json);

/* DELETE /_control/faults/{id}: the rule gone, its requests answered as
 * any again (the PSP's outage over). */
void     mock_fault_remove(long id);

/* GET /_control/registrations?key=K: sessions created under that PSP
 * Idempotency-Key, and requests seen with it. */
void     mock_registrations(const char *key, long *sessions, long *requests);

/* POST /_control/reset.  Never from a test that may run beside another. */
void     mock_reset(void);


#endif
