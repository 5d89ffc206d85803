/*
 * bench/blind_index: the blind index a gateway with this key file keeps in
 * psp_tokens for a PSP token (the core's pay_blind_index under the file's
 * first key, domain "psp_token:<psp>"), so that the benchmark's checkouts,
 * made in SQL, are found by a webhook as a gateway-registered checkout is:
 * by the first candidate the gateway sends, not by the plaintext it tries
 * last (rows from before a key file).
 * Input lines (stdin): "<psp>\t<token>"; output: "<psp>\t<token>\t<index>".
 *
 *   blind_index KEYFILE < tokens.tsv > indexes.tsv
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <payments/seal.h>


int
main(int argc, char **argv)
{
    FILE           *f;
    char           *text, line[1024], domain[128], idx[PAY_BLIND_INDEX_LEN + 1];
    char           *psp, *tok, *save;
    size_t          len, bad;
    pay_keyring_t   kr;

    if (argc != 2) {
        fprintf(stderr, "usage: blind_index KEYFILE < tokens.tsv\n");
        return 2;
    }

    f = fopen(argv[1], "r");
    text = malloc(65536);
    if (f == NULL || text == NULL) {
        fprintf(stderr, "blind_index: cannot read %s\n", argv[1]);
        return 1;
    }

    len = fread(text, 1, 65535, f);
    fclose(f);

    if (pay_keyring_parse(&kr, text, len, &bad) != 0) {
        fprintf(stderr, "blind_index: %s: line %zu is not a key\n", argv[1],
                bad);
        return 1;
    }

    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        psp = strtok_r(line, "\t", &save);
        tok = strtok_r(NULL, "\t", &save);

        if (psp == NULL || tok == NULL
            || snprintf(domain, sizeof(domain), "psp_token:%s", psp)
               >= (int) sizeof(domain)
            || pay_blind_index(&kr, 0, domain, tok, strlen(tok), idx) != 0)
        {
            fprintf(stderr, "blind_index: a line is not \"psp<TAB>token\"\n");
            return 1;
        }

        printf("%s\t%s\t%s\n", psp, tok, idx);
    }

    pay_keyring_wipe(&kr);
    free(text);

    return 0;
}
