/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "qr.h"

#define QR_QUIET_ZONE_TERMINAL 2 /* a terminal's own margin adds to it */
#define QR_QUIET_ZONE_PNG 4      /* what ISO/IEC 18004 asks for */
#define QR_PNG_SCALE 8

DEFINE_TRIVIAL_CLEANUP_FUNC(QRcode *, QRcode_free);

static int qr_encode(const char *text, QRcode **ret) {
        /* 8-bit mode, case kept; level L: a config fits a smaller code, and
         * a screen or a file gives a clean image */
        QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
        if (!q)
                return log_error_errno(errno > 0 ? -errno : -EINVAL, "Failed to encode QR code: %m");
        *ret = q;
        return 0;
}

/* Module (x, y) of a code with a quiet zone of q modules around it. */
static bool qr_dark(const QRcode *code, int q, int x, int y) {
        x -= q;
        y -= q;
        if (x < 0 || y < 0 || x >= code->width || y >= code->width)
                return false;
        return code->data[y * code->width + x] & 1;
}

int qr_print_terminal(const char *text, FILE *f) {
        _cleanup_(QRcode_freep) QRcode *code = NULL;
        int r, size;

        r = qr_encode(text, &code);
        if (r < 0)
                return r;
        size = code->width + 2 * QR_QUIET_ZONE_TERMINAL;
        for (int y = 0; y < size; y += 2) {
                for (int x = 0; x < size; x++) {
                        bool top = !qr_dark(code, QR_QUIET_ZONE_TERMINAL, x, y);
                        bool bottom = y + 1 < size && !qr_dark(code, QR_QUIET_ZONE_TERMINAL, x, y + 1);

                        fputs(top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ", f);
                }
                fputc('\n', f);
        }
        return fflush(f) == 0 ? 0 : -errno;
}

static int qr_png_rows(const QRcode *code, png_structp png) {
        int size = (code->width + 2 * QR_QUIET_ZONE_PNG) * QR_PNG_SCALE;
        _cleanup_free_ png_byte *row = malloc(size);

        if (!row)
                return -ENOMEM;
        for (int y = 0; y < size; y++) {
                for (int x = 0; x < size; x++)
                        row[x] =
                                qr_dark(code, QR_QUIET_ZONE_PNG, x / QR_PNG_SCALE, y / QR_PNG_SCALE) ? 0 : 0xff;
                png_write_row(png, row);
        }
        return 0;
}

/* libpng reports errors by longjmp(); everything we own is outside. */
static int qr_png_write_file(const QRcode *code, FILE *f) {
        png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
        png_infop info = png ? png_create_info_struct(png) : NULL;
        int size = (code->width + 2 * QR_QUIET_ZONE_PNG) * QR_PNG_SCALE, r;

        if (!info) {
                png_destroy_write_struct(&png, NULL);
                return -ENOMEM;
        }
        if (setjmp(png_jmpbuf(png))) {
                png_destroy_write_struct(&png, &info);
                return -EIO;
        }
        png_init_io(png, f);
        png_set_IHDR(png, info, size, size, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        r = qr_png_rows(code, png);
        if (r >= 0)
                png_write_end(png, NULL);
        png_destroy_write_struct(&png, &info);
        return r;
}

int qr_write_png(const char *text, const char *path) {
        _cleanup_(QRcode_freep) QRcode *code = NULL;
        _cleanup_free_ char *tmp = NULL;
        FILE *f;
        int fd, r;

        r = qr_encode(text, &code);
        if (r < 0)
                return r;
        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return log_oom();
        fd = mkostemp(tmp, O_CLOEXEC); /* 0600 */
        if (fd < 0)
                return log_error_errno(-errno, "Failed to create %s: %m", tmp);
        f = fdopen(fd, "w");
        if (!f) {
                r = -errno;
                close(fd);
                (void) unlink(tmp);
                return log_error_errno(r, "Failed to open %s: %m", tmp);
        }
        r = qr_png_write_file(code, f);
        if (fclose(f) != 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return log_error_errno(r, "Failed to write %s: %m", path);
        }
        return 0;
}
