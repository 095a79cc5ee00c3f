// Subcommands of the `megatune` program. Each lives in its own cmd_<name>.c and returns the
// process exit code (0 ok, 1 error with the message already printed, 2 usage error).
#ifndef MT_CLI_COMMANDS_H
#define MT_CLI_COMMANDS_H

int mt_cmd_train(int argc, char **argv);
int mt_cmd_test(int argc, char **argv);
int mt_cmd_predict(int argc, char **argv);
int mt_cmd_tokenize(int argc, char **argv);
int mt_cmd_inspect(int argc, char **argv);
int mt_cmd_convert(int argc, char **argv);
int mt_cmd_data(int argc, char **argv);
int mt_cmd_eval_squad(int argc, char **argv);
int mt_cmd_download(int argc, char **argv);
int mt_cmd_version(int argc, char **argv);

// Prints "megatune: error: <message>" for the library's last error and returns 1.
int mt_cli_error(void);
// Whether a command-line argument is a key=value override rather than a path: the part before
// '=' must look like a dotted config key (letters, digits, '_', '.', an optional leading '+' or
// '~'), so a file such as 'TC--val_loss=0.35-epoch=2.ckpt' or 'runs/lr=1e-5/in.txt' stays a path.
int mt_cli_is_override(const char *arg);

#endif
