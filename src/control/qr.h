/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A text as a QR code (libqrencode): for a phone's WireGuard app to scan a
 * device configuration from the terminal or from a PNG file. */

#include <stdio.h>

/* Two modules per character cell with UTF-8 half blocks, light modules
 * drawn (like `qrencode -t utf8`: dark terminals), with a quiet zone. */
int qr_print_terminal(const char *text, FILE *f);
/* An 8-bit grey PNG (libpng), 8 pixels a module, 4 modules of quiet zone;
 * written to a temporary file and renamed, mode 0600 (the text may hold a
 * private key). */
int qr_write_png(const char *text, const char *path);
