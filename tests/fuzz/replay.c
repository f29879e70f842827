/* Replays files through a libFuzzer target without libFuzzer, so `make test`
 * runs every fuzz harness over its committed corpus with gcc + ASan (no clang
 * needed). Usage: replay FILE... ; a crash or abort() fails the run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ra/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        uint8_t *data;
        size_t len;
        if (ra_read_file(argv[i], &data, &len) != RA_OK) {
            fprintf(stderr, "replay: %s\n", ra_errmsg());
            return 2;
        }
        LLVMFuzzerTestOneInput(data, len);
        free(data);
    }
    printf("replay: %d inputs\n", argc - 1);
    return 0;
}
