/* SPDX-License-Identifier: MIT */
/*
 * The worker's load-time Go check (userspace/worker/abi_check.c) on files
 * made here: a Go library is recognised by its build-id note or by its
 * .go.buildinfo section, refused in tier pure, and refused a second time in
 * one process; hostile files (truncated, lying counts and offsets, notes
 * whose sizes run past their segment) are read within bounds and left to
 * dlopen (0), never a crash. No lutfd, no Go compiler needed.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi_check.h"

/* An ELF64 file: header, one program header at 64, a note area at 128,
 * section headers at 512, section names at 1024; 2048 bytes in all. */
struct img {
	uint8_t b[2048];
};

static Elf64_Ehdr *eh(struct img *m)
{
	return (Elf64_Ehdr *)m->b;
}

static void img_init(struct img *m)
{
	memset(m, 0, sizeof(*m));
	memcpy(m->b, ELFMAG, SELFMAG);
	m->b[EI_CLASS] = ELFCLASS64;
	m->b[EI_DATA] = ELFDATA2LSB;
	m->b[EI_VERSION] = EV_CURRENT;
	eh(m)->e_type = ET_DYN;
	eh(m)->e_machine = EM_X86_64;
	eh(m)->e_ehsize = sizeof(Elf64_Ehdr);
	eh(m)->e_phentsize = sizeof(Elf64_Phdr);
	eh(m)->e_shentsize = sizeof(Elf64_Shdr);
}

/* A PT_NOTE at 128 holding one note (owner, type, 8 bytes of data). */
static void img_note(struct img *m, const char *owner, uint32_t type)
{
	Elf64_Phdr *ph = (Elf64_Phdr *)(m->b + 64);
	Elf64_Nhdr *n = (Elf64_Nhdr *)(m->b + 128);
	size_t ol = strlen(owner) + 1;

	eh(m)->e_phoff = 64;
	eh(m)->e_phnum = 1;
	n->n_namesz = (uint32_t)ol;
	n->n_descsz = 8;
	n->n_type = type;
	memcpy(m->b + 128 + sizeof(*n), owner, ol);
	ph->p_type = PT_NOTE;
	ph->p_offset = 128;
	ph->p_filesz = sizeof(*n) + ((ol + 3) & ~3ul) + 8;
}

/* Sections: null, .shstrtab, and one named name. */
static void img_section(struct img *m, const char *name)
{
	Elf64_Shdr *sh = (Elf64_Shdr *)(m->b + 512);
	char *names = (char *)m->b + 1024;

	eh(m)->e_shoff = 512;
	eh(m)->e_shnum = 3;
	eh(m)->e_shstrndx = 1;
	strcpy(names + 1, ".shstrtab");
	strcpy(names + 11, name);
	sh[1].sh_name = 1;
	sh[1].sh_type = SHT_STRTAB;
	sh[1].sh_offset = 1024;
	sh[1].sh_size = 11 + strlen(name) + 1;
	sh[2].sh_name = 11;
	sh[2].sh_type = SHT_PROGBITS;
}

static char path[64];

static const char *img_write(const void *p, size_t len)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/lutf-abi-check-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, p, len), (ssize_t)len);
	close(fd);
	return path;
}

static void cleanup(void)
{
	if (path[0])
		unlink(path);
}

TestSuite(abi_check, .fini = cleanup, .timeout = 20);

/* The check's answer for the file of len bytes, in tier (pure: no threads). */
static int check(const void *p, size_t len, const char *app, const char *tier, char *msg,
		 size_t cap)
{
	int rc =
	    lutf_abi_check_app(img_write(p, len), app, tier, strcmp(tier, "pure") != 0, msg, cap);

	unlink(path);
	path[0] = 0;
	return rc;
}

Test(abi_check, go_note_refused_in_pure_with_the_tier_named)
{
	struct img m;
	char msg[400] = "";

	img_init(&m);
	img_note(&m, "Go", 4);
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), -EPERM);
	cr_assert(strstr(msg, "tier pure allows no new threads"), "%s", msg);
	/* As Go's linker writes it: "Go\0\0", namesz 4. */
	((Elf64_Nhdr *)(m.b + 128))->n_namesz = 4;
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), -EPERM);
}

Test(abi_check, go_refused_in_any_tier_without_threads)
{
	struct img m;
	char msg[400] = "";

	img_init(&m);
	img_note(&m, "Go", 4);
	cr_assert_eq(
	    lutf_abi_check_app(img_write(&m, sizeof(m)), "a", "mytier", false, msg, sizeof(msg)),
	    -EPERM);
	cr_assert(strstr(msg, "tier mytier allows no new threads"), "%s", msg);
}

Test(abi_check, go_section_refused_in_pure)
{
	struct img m;
	char msg[400] = "";

	img_init(&m);
	img_section(&m, ".go.buildinfo");
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), -EPERM, "%s", msg);
}

Test(abi_check, not_go_passes_in_every_tier)
{
	static const char *const tiers[] = {"", "pure", "basic", "service", "compat"};
	struct img m;
	char msg[400] = "";

	img_init(&m);
	img_note(&m, "GNU", 3); /* a GNU build id */
	img_section(&m, ".go.other");
	for (size_t i = 0; i < sizeof(tiers) / sizeof(tiers[0]); i++)
		cr_assert_eq(check(&m, sizeof(m), "a", tiers[i], msg, sizeof(msg)), 0, "%s: %s",
			     tiers[i], msg);
	/* Go's note type under another owner, and "Go" with another type. */
	img_init(&m);
	img_note(&m, "Gx", 4);
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), 0);
	img_init(&m);
	img_note(&m, "Go", 1);
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), 0);
}

Test(abi_check, one_go_runtime_per_process)
{
	struct img m;
	char msg[400] = "";

	img_init(&m);
	img_note(&m, "Go", 4);
	cr_assert_eq(check(&m, sizeof(m), "first", "basic", msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(check(&m, sizeof(m), "first", "basic", msg, sizeof(msg)), -EBUSY);
	cr_assert(strstr(msg, "app first already runs a Go runtime"), "%s", msg);
	cr_assert_eq(check(&m, sizeof(m), "second", "compat", msg, sizeof(msg)), -EBUSY);
	cr_assert(strstr(msg, "(app first); two Go runtimes cannot share one process"), "%s", msg);
	/* Not Go: still fine beside it. */
	img_init(&m);
	cr_assert_eq(check(&m, sizeof(m), "c", "basic", msg, sizeof(msg)), 0);
}

Test(abi_check, hostile_files_are_left_to_dlopen)
{
	struct img m;
	Elf64_Nhdr *n = (Elf64_Nhdr *)(m.b + 128);
	Elf64_Phdr *ph = (Elf64_Phdr *)(m.b + 64);
	Elf64_Shdr *sh = (Elf64_Shdr *)(m.b + 512);
	char msg[400] = "", junk[300];

	/* Missing, empty, short, not ELF, 32-bit. */
	cr_assert_eq(
	    lutf_abi_check_app("/nonexistent/lutf.so", "a", "pure", false, msg, sizeof(msg)), 0);
	cr_assert_eq(check("", 0, "a", "pure", msg, sizeof(msg)), 0);
	cr_assert_eq(check(ELFMAG, SELFMAG, "a", "pure", msg, sizeof(msg)), 0);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 131 + 7);
	cr_assert_eq(check(junk, sizeof(junk), "a", "pure", msg, sizeof(msg)), 0);
	img_init(&m);
	img_note(&m, "Go", 4);
	m.b[EI_CLASS] = ELFCLASS32;
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), 0);
	/* A Go note cut short by its file: only what is there is read. */
	img_init(&m);
	img_note(&m, "Go", 4);
	cr_assert_eq(check(&m, 140, "a", "pure", msg, sizeof(msg)), 0);
	/* Lying counts and offsets in the header. */
	img_init(&m);
	img_note(&m, "Go", 4);
	eh(&m)->e_phnum = 0xffff;
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), 0);
	img_init(&m);
	img_note(&m, "Go", 4);
	eh(&m)->e_phoff = ~0ull >> 1;
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), 0);
	img_init(&m);
	img_note(&m, "Go", 4);
	eh(&m)->e_phentsize = 1;
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), 0);
	/* A note segment larger than the file, or claiming gigabytes. */
	img_init(&m);
	img_note(&m, "Go", 4);
	ph->p_filesz = 1u << 30;
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), 0);
	/* Note sizes that run past the segment (and would wrap 32 bits). */
	img_init(&m);
	img_note(&m, "Go", 4);
	n->n_namesz = 0xffffffffu;
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), 0);
	img_init(&m);
	img_note(&m, "GNU", 3);
	n->n_descsz = 0xfffffffdu;
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), 0);
	/* Section table: index past the count, names past the string table,
	 * a string table claiming gigabytes, a count past the limit. */
	img_init(&m);
	img_section(&m, ".go.buildinfo");
	eh(&m)->e_shstrndx = 7;
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), 0);
	img_init(&m);
	img_section(&m, ".go.buildinfo");
	sh[2].sh_name = 0x7fffffff;
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), 0);
	img_init(&m);
	img_section(&m, ".go.buildinfo");
	sh[1].sh_size = 1ull << 40;
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), 0);
	img_init(&m);
	img_section(&m, ".go.buildinfo");
	eh(&m)->e_shnum = 0xffff;
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), 0);
	/* A string table without its NUL at the end: read as bounded. */
	img_init(&m);
	img_section(&m, ".go.buildinfo");
	sh[1].sh_size = 11 + strlen(".go.buildinfo"); /* the name's NUL cut off */
	cr_assert_eq(check(&m, sizeof(m), "a", "pure", msg, sizeof(msg)), -EPERM);
}
