/* One entry point per command; each returns the process exit code (cli_util.h). */
#ifndef RA_COMMANDS_H
#define RA_COMMANDS_H

#include <stdint.h>

int ra_cmd_run(int argc, char **argv);
int ra_cmd_compare(int argc, char **argv);
int ra_cmd_verify(int argc, char **argv);
int ra_cmd_check(int argc, char **argv);
int ra_cmd_locate(int argc, char **argv);
int ra_cmd_inspect(int argc, char **argv);
int ra_cmd_tokenize(int argc, char **argv);
int ra_cmd_export_hf(int argc, char **argv);
int ra_cmd_bench(int argc, char **argv);
int ra_cmd_dump(int argc, char **argv);
int ra_cmd_identify(int argc, char **argv);
int ra_cmd_quantize(int argc, char **argv);
int ra_cmd_ppl(int argc, char **argv);
int ra_cmd_quantize_gguf(int argc, char **argv); /* cmd_quantize_gguf.c */
uint32_t ra_gguf_file_type_of(const char *format);

#endif
