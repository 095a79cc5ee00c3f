// A minimal TensorBoard event-file writer: TFRecord framing (u64 length, masked CRC32C of the
// length, payload, masked CRC32C of the payload) around hand-encoded Event protobufs.
// The first record is file_version "brain.Event:2"; then one Event per scalar with
// Summary{value{tag, simple_value}}. Every record is flushed, so a killed run leaves at most
// one torn record at the end, which TensorBoard skips.
#ifndef MT_TRAIN_TENSORBOARD_H
#define MT_TRAIN_TENSORBOARD_H

#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

typedef struct mt_tb_writer mt_tb_writer;

// Creates dir/events.out.tfevents.<unix time>.<host>.<pid>.<n> (a new file per call, like
// PyTorch's SummaryWriter). *path_out (optional) receives a copy of the file name (free it).
mt_status mt_tb_open(const char *dir, mt_tb_writer **out, char **path_out) MT_WARN_UNUSED;
mt_status mt_tb_scalar(mt_tb_writer *w, const char *tag, float value, int64_t step, double wall_time) MT_WARN_UNUSED;
mt_status mt_tb_close(mt_tb_writer *w);

// CRC-32C (Castagnoli), and TFRecord's mask of it.
uint32_t mt_crc32c(uint32_t crc, const void *data, size_t n);
uint32_t mt_tfrecord_mask(uint32_t crc);

#endif
