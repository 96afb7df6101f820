/**
 * The errno numbers bpfkit branches on, from uapi asm-generic/errno-base.h and errno.h, plus the
 * kernel-internal ENOTSUPP (524) that bpf() returns for "not supported for this type" and that libc
 * does not name. Syscall wrappers return them negated.
 */
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const E2BIG = 7;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOSPC = 28;
export const ERANGE = 34;
export const ENOSYS = 38;
export const EOPNOTSUPP = 95;
export const EADDRINUSE = 98;
export const ENOTSUPP = 524;
