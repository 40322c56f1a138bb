/* SPDX-License-Identifier: MIT */
/*
 * Load-time checks on an app file, run in the worker before dlopen: today,
 * whether the app carries a Go runtime (a -buildmode=c-shared library), and
 * if so whether this worker's tier can run one and whether a Go runtime is
 * already in this process (two cannot share one). Reads the file with
 * bounded preads only; a file that is not a well-formed ELF is left to
 * dlopen to refuse.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi_check.h"

#define GO_NOTE_TYPE 4 /* NT_GO_BUILDID, owner "Go" (cmd/link pads it: namesz 4) */
#define MAX_PHDRS 64
#define MAX_SHDRS 512
#define MAX_SHSTR (64u * 1024)

/* The app whose Go runtime this process runs (set once; main thread only). */
static char go_app[64];

static bool pread_all(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n = pread(fd, buf, len, off);

	return n == (ssize_t)len;
}

/* True when the notes in p[0..len) hold one of owner "Go", type 4. */
static bool notes_have_go(const uint8_t *p, size_t len)
{
	size_t off = 0;

	while (off + sizeof(Elf64_Nhdr) <= len) {
		Elf64_Nhdr n;
		size_t name, desc;

		memcpy(&n, p + off, sizeof(n));
		off += sizeof(n);
		name = ((size_t)n.n_namesz + 3) & ~(size_t)3;
		desc = ((size_t)n.n_descsz + 3) & ~(size_t)3;
		if (name > len - off || desc > len - off - name)
			return false;
		if (n.n_type == GO_NOTE_TYPE && (n.n_namesz == 3 || n.n_namesz == 4) &&
		    !memcmp(p + off, "Go", 3))
			return true;
		off += name + desc;
	}
	return false;
}

/* A PT_NOTE segment of the file with the Go build id note. */
static bool file_go_note(int fd, const Elf64_Ehdr *eh)
{
	Elf64_Phdr ph[MAX_PHDRS];
	size_t n = eh->e_phnum;

	if (!n || n > MAX_PHDRS || eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    !pread_all(fd, ph, n * sizeof(ph[0]), (off_t)eh->e_phoff))
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t buf[4096];

		if (ph[i].p_type != PT_NOTE || ph[i].p_filesz > sizeof(buf) ||
		    !pread_all(fd, buf, ph[i].p_filesz, (off_t)ph[i].p_offset))
			continue;
		if (notes_have_go(buf, ph[i].p_filesz))
			return true;
	}
	return false;
}

/* A section named .go.buildinfo (Go writes it even without a build id). */
static bool file_go_section(int fd, const Elf64_Ehdr *eh)
{
	Elf64_Shdr *sh = NULL, str;
	size_t n = eh->e_shnum;
	char *names = NULL;
	bool found = false;

	if (!n || n > MAX_SHDRS || eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shstrndx >= n)
		return false;
	sh = calloc(n, sizeof(*sh));
	if (!sh || !pread_all(fd, sh, n * sizeof(*sh), (off_t)eh->e_shoff))
		goto out;
	str = sh[eh->e_shstrndx];
	if (!str.sh_size || str.sh_size > MAX_SHSTR)
		goto out;
	names = malloc(str.sh_size + 1);
	if (!names || !pread_all(fd, names, str.sh_size, (off_t)str.sh_offset))
		goto out;
	names[str.sh_size] = 0;
	for (size_t i = 0; i < n && !found; i++)
		found =
		    sh[i].sh_name < str.sh_size && !strcmp(names + sh[i].sh_name, ".go.buildinfo");
out:
	free(names);
	free(sh);
	return found;
}

/* 1 when the file at path is a Go library, 0 when not (or not an ELF we read). */
static int file_is_go(const char *path)
{
	Elf64_Ehdr eh;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int go = 0;

	if (fd < 0)
		return 0;
	if (pread_all(fd, &eh, sizeof(eh), 0) && !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
	    eh.e_ident[EI_CLASS] == ELFCLASS64)
		go = file_go_note(fd, &eh) || file_go_section(fd, &eh);
	close(fd);
	return go;
}

/* True when [vaddr, vaddr + len) lies inside one PT_LOAD segment of info
 * (so it is mapped and readable: a note outside every segment is not read). */
static bool in_load(const struct dl_phdr_info *info, uint64_t vaddr, uint64_t len)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const Elf64_Phdr *ph = &info->dlpi_phdr[i];

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_R) && vaddr >= ph->p_vaddr &&
		    len <= ph->p_filesz && vaddr - ph->p_vaddr <= ph->p_filesz - len)
			return true;
	}
	return false;
}

/* dl_iterate_phdr: stop (1) at a loaded object with the Go note. */
static int loaded_go(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const Elf64_Phdr *ph = &info->dlpi_phdr[i];

		if (ph->p_type == PT_NOTE && in_load(info, ph->p_vaddr, ph->p_memsz) &&
		    notes_have_go((const uint8_t *)(info->dlpi_addr + ph->p_vaddr), ph->p_memsz)) {
			*(const char **)arg = info->dlpi_name;
			return 1;
		}
	}
	return 0;
}

/*
 * Why a Go runtime cannot run in tier, or NULL when it can. What each tier
 * does to Go is in docs/functions.md ("Go"): a tier whose Labors are all
 * started before the filter (pure: "labors fixed") allows no clone after
 * it, and the Go runtime starts its threads (sysmon, GC workers) when the
 * library is loaded.
 */
static const char *go_tier_refusal(bool threads)
{
	if (!threads)
		return "allows no new threads (no clone), and the Go runtime starts its own "
		       "threads when the library loads; use tier basic or above";
	return NULL;
}

int lutf_abi_check_app(const char *path, const char *app, const char *tier, bool threads, char *msg,
		       size_t cap)
{
	const char *why, *other = NULL;

	if (!file_is_go(path))
		return 0;
	why = go_tier_refusal(threads);
	if (why) {
		snprintf(msg, cap, "a Go library (-buildmode=c-shared) cannot run here: tier %s %s",
			 tier && tier[0] ? tier : "(none)", why);
		return -EPERM;
	}
	if (go_app[0] || dl_iterate_phdr(loaded_go, &other)) {
		if (!strcmp(go_app, app))
			snprintf(msg, cap,
				 "app %s already runs a Go runtime in this tenant's worker; a Go "
				 "runtime cannot be unloaded or loaded twice: to replace a Go app, "
				 "delete its functions (the worker stops) and deploy it again",
				 app);
		else
			snprintf(msg, cap,
				 "a Go runtime is already loaded in this tenant's worker (%s %s); "
				 "two Go runtimes cannot share one process: deploy this app under "
				 "another tenant",
				 go_app[0] ? "app" : "library",
				 go_app[0] ? go_app : (other ? other : "?"));
		return -EBUSY;
	}
	/* From dlopen on, the runtime is in this process for good (Go
	 * libraries are linked NODELETE; dlclose does not unload them). */
	snprintf(go_app, sizeof(go_app), "%s", app);
	return 0;
}
