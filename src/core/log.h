// Logging: one global sink (stderr by default, plus an optional per-rank log file that
// the experiment manager opens). Levels follow NeMo's wording.
#ifndef MT_CORE_LOG_H
#define MT_CORE_LOG_H

#include <stdio.h>
#include "core/status.h"

// MT_LOG_OFF: nothing on stderr (a log file set with mt_log_set_file still gets every line).
typedef enum { MT_LOG_DEBUG = 0, MT_LOG_INFO = 1, MT_LOG_WARNING = 2, MT_LOG_ERROR = 3, MT_LOG_OFF = 4 } mt_log_level;

void mt_log_set_level(mt_log_level level);
// Also copy every message to `file` (not owned; NULL to stop).
void mt_log_set_file(FILE *file);
// Also copy warnings and errors to `file` (NeMo's nemo_error_log.txt; not owned; NULL to stop).
void mt_log_set_error_file(FILE *file);
// Rank shown in each line when world size > 1 (-1 hides it).
void mt_log_set_rank(int rank);
void mt_log(mt_log_level level, const char *fmt, ...) MT_PRINTF(2, 3);

#define mt_info(...) mt_log(MT_LOG_INFO, __VA_ARGS__)
#define mt_warn(...) mt_log(MT_LOG_WARNING, __VA_ARGS__)
#define mt_debug(...) mt_log(MT_LOG_DEBUG, __VA_ARGS__)

#endif
