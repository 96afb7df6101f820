/**
 * The errno values the emulated kernel returns (negated, as the bpf() syscall wrapper does). Only the
 * numbers the emulator uses; x86_64 Linux values, plus the kernel-internal ENOTSUPP (524) that BPF
 * leaks to user space.
 */
export const EPERM = 1;
export const ENOENT = 2;
export const ENXIO = 6;
export const E2BIG = 7;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EINVAL = 22;
export const ENOTTY = 25;
export const ENOSPC = 28;
export const ERANGE = 34;
export const EPROTO = 71;
export const ENOSYS = 38;
export const ENOTEMPTY = 39;
export const ELOOP = 40;
export const EOVERFLOW = 75;
export const ENOTSOCK = 88;
export const EOPNOTSUPP = 95;
export const EAFNOSUPPORT = 97;
export const ENOTSUPP = 524;
