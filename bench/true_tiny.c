/* SPDX-License-Identifier: MIT */
/*
 * true_tiny: the smallest program the exec baselines start. Built static
 * where the toolchain allows, so an exec costs the kernel's work plus libc
 * start-up and nothing of the dynamic loader.
 */
int main(void)
{
	return 0;
}
