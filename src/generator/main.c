/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshd-fstab-generator: see meshd-fstab-generator(8). Called by systemd as
 * a generator with NORMAL_DIR EARLY_DIR LATE_DIR; never fails the boot. */
#include <stdbool.h>

#include "fstab-mesh.h"
#include "log.h"
#include "macro.h"

static bool in_initrd(void) {
        const char *e = getenv("SYSTEMD_IN_INITRD");

        if (e && (streq(e, "0") || streq(e, "1")))
                return streq(e, "1");
        return access("/etc/initrd-release", F_OK) == 0;
}

int main(int argc, char *argv[]) {
        const char *fstab, *state_dir;

        log_setup("meshd-fstab-generator", LOG_TARGET_AUTO);

        if (argc > 1 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
                printf("%s NORMAL_DIR [EARLY_DIR [LATE_DIR]]\n\n"
                       "systemd generator: orders fstab mounts that need the mesh after their peer.\n"
                       "Environment: SYSTEMD_FSTAB (default /etc/fstab), MESHD_STATE_DIR (default %s).\n"
                       "See meshd-fstab-generator(8).\n",
                       program_invocation_short_name, MESHD_STATE_DIR_DEFAULT);
                return EXIT_SUCCESS;
        }
        if (argc != 2 && argc != 4) {
                log_error("This program takes one or three arguments (systemd generator directories).");
                return EXIT_FAILURE;
        }

        /* The mesh does not exist in the initrd; mounts there are not ours. */
        if (in_initrd()) {
                log_debug("Running in the initrd, nothing to do.");
                return EXIT_SUCCESS;
        }

        fstab = getenv("SYSTEMD_FSTAB") ?: "/etc/fstab";
        state_dir = getenv("MESHD_STATE_DIR") ?: MESHD_STATE_DIR_DEFAULT;

        (void) fstab_mesh_generate(fstab, state_dir, argv[1], argc == 4 ? argv[2] : argv[1]);
        /* A generator that fails only gets a line in the journal, but be
         * explicit: whatever went wrong was logged, the boot goes on. */
        return EXIT_SUCCESS;
}
