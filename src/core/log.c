#include "core/log.h"

#include <stdarg.h>
#include <time.h>

static mt_log_level g_level = MT_LOG_INFO;
static FILE *g_file = NULL;
static FILE *g_err_file = NULL;
static int g_rank = -1;

void mt_log_set_level(mt_log_level level) { g_level = level; }
void mt_log_set_file(FILE *file) { g_file = file; }
void mt_log_set_error_file(FILE *file) { g_err_file = file; }
void mt_log_set_rank(int rank) { g_rank = rank; }

static const char *level_name(mt_log_level l) {
    switch (l) {
    case MT_LOG_DEBUG: return "D";
    case MT_LOG_INFO: return "I";
    case MT_LOG_WARNING: return "W";
    case MT_LOG_ERROR: return "E";
    case MT_LOG_OFF: break;
    }
    return "?";
}

static void emit(FILE *out, mt_log_level level, const char *stamp, const char *msg) {
    if (g_rank >= 0)
        fprintf(out, "[megatune %s %s rank %d] %s\n", level_name(level), stamp, g_rank, msg);
    else
        fprintf(out, "[megatune %s %s] %s\n", level_name(level), stamp, msg);
}

void mt_log(mt_log_level level, const char *fmt, ...) {
    char msg[4096], stamp[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    time_t now = time(NULL);
    struct tm tmv;
    localtime_r(&now, &tmv);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tmv);
    if (level >= g_level) emit(stderr, level, stamp, msg);
    if (g_file) {
        emit(g_file, level, stamp, msg);
        fflush(g_file);
    }
    if (g_err_file && level >= MT_LOG_WARNING) {
        emit(g_err_file, level, stamp, msg);
        fflush(g_err_file);
    }
}
