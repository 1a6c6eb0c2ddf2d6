/*
 * target.c -- can the agent be preloaded into this executable? Reads the
 * ELF program headers and dynamic section with libelf: a PT_INTERP means
 * the dynamic loader runs (and honours LD_PRELOAD unless the file is
 * setuid/setgid, i.e. a secure exec); a DT_NEEDED libasan means the agent
 * must not come first in the library list.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wlprof/stacks.h"

int wl_agent_inspect_target(const char *path, wl_agent_target *out)
{
    memset(out, 0, sizeof(*out));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int err = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        err = -errno;
        goto out_fd;
    }
    out->setid = (st.st_mode & (S_ISUID | S_ISGID)) != 0;
    char magic[2];
    if (pread(fd, magic, 2, 0) == 2 && magic[0] == '#' && magic[1] == '!') {
        out->script = true;
        out->dynamic = true; /* the interpreter decides; assume the usual */
        goto out_fd;
    }
    elf_version(EV_CURRENT);
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    if (!e || elf_kind(e) != ELF_K_ELF) {
        err = -ENOEXEC;
        goto out_elf;
    }
    size_t nph = 0;
    if (elf_getphdrnum(e, &nph) != 0) {
        err = -ENOEXEC;
        goto out_elf;
    }
    for (size_t i = 0; i < nph; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_INTERP)
            out->dynamic = true;
    }
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(e, scn)) != NULL) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC)
            continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        if (!data || sh.sh_entsize == 0)
            continue;
        for (size_t k = 0; k < sh.sh_size / sh.sh_entsize; k++) {
            GElf_Dyn dyn;
            if (!gelf_getdyn(data, (int)k, &dyn) || dyn.d_tag != DT_NEEDED)
                continue;
            const char *name = elf_strptr(e, sh.sh_link, dyn.d_un.d_val);
            if (name && strncmp(name, "libasan.so", 10) == 0)
                out->asan = true;
        }
    }
out_elf:
    if (e)
        elf_end(e);
out_fd:
    close(fd);
    return err;
}
