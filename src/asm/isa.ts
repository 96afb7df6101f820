/**
 * The BPF instruction set as the emulator and the disassembler need it: opcode fields, which encodings the kernel accepts
 * (with the verifier's own words for the ones it refuses), helper names by number, and a
 * disassembler in the verifier log's notation for error messages. Facts from the kernel's
 * Documentation/bpf/standardization/instruction-set.rst and uapi linux/bpf.h.
 */
import { bpf_insn } from '../abi/uapi.js';

/** struct bpf_insn's register nibbles: [bit offset, bits] (dst_reg low, src_reg high, in one byte). */
const { dst_reg: DST_REG, src_reg: SRC_REG } = bpf_insn.$bits;

export const CLS = { LD: 0x00, LDX: 0x01, ST: 0x02, STX: 0x03, ALU: 0x04, JMP: 0x05, JMP32: 0x06, ALU64: 0x07 } as const;
export const SIZE = { W: 0x00, H: 0x08, B: 0x10, DW: 0x18 } as const;
export const MODE = { IMM: 0x00, ABS: 0x20, IND: 0x40, MEM: 0x60, MEMSX: 0x80, ATOMIC: 0xc0 } as const;
export const ALU = {
  ADD: 0x00, SUB: 0x10, MUL: 0x20, DIV: 0x30, OR: 0x40, AND: 0x50, LSH: 0x60, RSH: 0x70, NEG: 0x80, MOD: 0x90,
  XOR: 0xa0, MOV: 0xb0, ARSH: 0xc0, END: 0xd0,
} as const;
export const JMP = {
  JA: 0x00, JEQ: 0x10, JGT: 0x20, JGE: 0x30, JSET: 0x40, JNE: 0x50, JSGT: 0x60, JSGE: 0x70, CALL: 0x80, EXIT: 0x90,
  JLT: 0xa0, JLE: 0xb0, JSLT: 0xc0, JSLE: 0xd0, JCOND: 0xe0,
} as const;
export const SRC_X = 0x08;
/** Atomic operations (the imm of BPF_STX | BPF_ATOMIC). */
export const ATOMIC = {
  ADD: 0x00, OR: 0x40, AND: 0x50, XOR: 0xa0, FETCH: 0x01, XCHG: 0xe1, CMPXCHG: 0xf1, LOAD_ACQ: 0x100, STORE_REL: 0x110,
} as const;

/** src_reg of ld_imm64. */
export const PSEUDO = { MAP_FD: 1, MAP_VALUE: 2, BTF_ID: 3, FUNC: 4, MAP_IDX: 5, MAP_IDX_VALUE: 6 } as const;
/** src_reg of call. */
export const CALL_HELPER = 0;
export const CALL_PSEUDO = 1;
export const CALL_KFUNC = 2;

/** Helper names by BPF_FUNC_* number (uapi linux/bpf.h, __BPF_FUNC_MAPPER order). */
export const HELPER_NAMES: readonly string[] = (
  'unspec map_lookup_elem map_update_elem map_delete_elem probe_read ktime_get_ns trace_printk get_prandom_u32 ' +
  'get_smp_processor_id skb_store_bytes l3_csum_replace l4_csum_replace tail_call clone_redirect ' +
  'get_current_pid_tgid get_current_uid_gid get_current_comm get_cgroup_classid skb_vlan_push skb_vlan_pop ' +
  'skb_get_tunnel_key skb_set_tunnel_key perf_event_read redirect get_route_realm perf_event_output ' +
  'skb_load_bytes get_stackid csum_diff skb_get_tunnel_opt skb_set_tunnel_opt skb_change_proto skb_change_type ' +
  'skb_under_cgroup get_hash_recalc get_current_task probe_write_user current_task_under_cgroup skb_change_tail ' +
  'skb_pull_data csum_update set_hash_invalid get_numa_node_id skb_change_head xdp_adjust_head probe_read_str ' +
  'get_socket_cookie get_socket_uid set_hash setsockopt skb_adjust_room redirect_map sk_redirect_map ' +
  'sock_map_update xdp_adjust_meta perf_event_read_value perf_prog_read_value getsockopt override_return ' +
  'sock_ops_cb_flags_set msg_redirect_map msg_apply_bytes msg_cork_bytes msg_pull_data bind xdp_adjust_tail ' +
  'skb_get_xfrm_state get_stack skb_load_bytes_relative fib_lookup sock_hash_update msg_redirect_hash ' +
  'sk_redirect_hash lwt_push_encap lwt_seg6_store_bytes lwt_seg6_adjust_srh lwt_seg6_action rc_repeat rc_keydown ' +
  'skb_cgroup_id get_current_cgroup_id get_local_storage sk_select_reuseport skb_ancestor_cgroup_id ' +
  'sk_lookup_tcp sk_lookup_udp sk_release map_push_elem map_pop_elem map_peek_elem msg_push_data msg_pop_data ' +
  'rc_pointer_rel spin_lock spin_unlock sk_fullsock tcp_sock skb_ecn_set_ce get_listener_sock skc_lookup_tcp ' +
  'tcp_check_syncookie sysctl_get_name sysctl_get_current_value sysctl_get_new_value sysctl_set_new_value strtol ' +
  'strtoul sk_storage_get sk_storage_delete send_signal tcp_gen_syncookie skb_output probe_read_user ' +
  'probe_read_kernel probe_read_user_str probe_read_kernel_str tcp_send_ack send_signal_thread jiffies64 ' +
  'read_branch_records get_ns_current_pid_tgid xdp_output get_netns_cookie get_current_ancestor_cgroup_id ' +
  'sk_assign ktime_get_boot_ns seq_printf seq_write sk_cgroup_id sk_ancestor_cgroup_id ringbuf_output ' +
  'ringbuf_reserve ringbuf_submit ringbuf_discard ringbuf_query csum_level skc_to_tcp6_sock skc_to_tcp_sock ' +
  'skc_to_tcp_timewait_sock skc_to_tcp_request_sock skc_to_udp6_sock get_task_stack load_hdr_opt store_hdr_opt ' +
  'reserve_hdr_opt inode_storage_get inode_storage_delete d_path copy_from_user snprintf_btf seq_printf_btf ' +
  'skb_cgroup_classid redirect_neigh per_cpu_ptr this_cpu_ptr redirect_peer task_storage_get task_storage_delete ' +
  'get_current_task_btf bprm_opts_set ktime_get_coarse_ns ima_inode_hash sock_from_file check_mtu ' +
  'for_each_map_elem snprintf sys_bpf btf_find_by_name_kind sys_close timer_init timer_set_callback timer_start ' +
  'timer_cancel get_func_ip get_attach_cookie task_pt_regs get_branch_snapshot trace_vprintk skc_to_unix_sock ' +
  'kallsyms_lookup_name find_vma loop strncmp get_func_arg get_func_ret get_func_arg_cnt get_retval set_retval ' +
  'xdp_get_buff_len xdp_load_bytes xdp_store_bytes copy_from_user_task skb_set_tstamp ima_file_hash kptr_xchg ' +
  'map_lookup_percpu_elem skc_to_mptcp_sock dynptr_from_mem ringbuf_reserve_dynptr ringbuf_submit_dynptr ' +
  'ringbuf_discard_dynptr dynptr_read dynptr_write dynptr_data tcp_raw_gen_syncookie_ipv4 ' +
  'tcp_raw_gen_syncookie_ipv6 tcp_raw_check_syncookie_ipv4 tcp_raw_check_syncookie_ipv6 ktime_get_tai_ns ' +
  'user_ringbuf_drain'
).split(' ');

/**
 * The name of a BPF helper by its number (`bpf_map_lookup_elem` for 1), or `unknown#N` for one the
 * table does not know.
 */
export function helperName(id: number): string {
  const n = HELPER_NAMES[id];
  return n ? `bpf_${n}` : `unknown#${id}`;
}

/** One decoded instruction. */
export interface RawInsn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

/**
 * Decodes the `i`-th 8-byte instruction of `bytes` into its fields (opcode, registers, offset,
 * immediate).
 */
export function readInsn(bytes: Uint8Array, i: number): RawInsn {
  const o = i * bpf_insn.$size;
  const view = new DataView(bytes.buffer, bytes.byteOffset + o, bpf_insn.$size);
  const regs = bytes[o + (DST_REG[0] >> 3)]!;
  return {
    code: bytes[o + bpf_insn.code]!,
    dst: regs & ((1 << DST_REG[1]) - 1),
    src: regs >> (SRC_REG[0] - DST_REG[0]),
    off: view.getInt16(bpf_insn.off, true),
    imm: view.getInt32(bpf_insn.imm, true),
  };
}

const SIZE_NAME: Record<number, string> = { 0x00: 'u32', 0x08: 'u16', 0x10: 'u8', 0x18: 'u64' };
const SIZE_SX: Record<number, string> = { 0x00: 's32', 0x08: 's16', 0x10: 's8' };
const ALU_SYM: Record<number, string> = {
  0x00: '+=', 0x10: '-=', 0x20: '*=', 0x30: '/=', 0x40: '|=', 0x50: '&=', 0x60: '<<=', 0x70: '>>=', 0x90: '%=',
  0xa0: '^=', 0xb0: '=', 0xc0: 's>>=',
};
const JMP_SYM: Record<number, string> = {
  0x10: '==', 0x20: '>', 0x30: '>=', 0x40: '&', 0x50: '!=', 0x60: 's>', 0x70: 's>=', 0xa0: '<', 0xb0: '<=', 0xc0: 's<', 0xd0: 's<=',
};

function signed(n: number): string {
  return n < 0 ? `${n}` : `+${n}`;
}

/**
 * One instruction in the verifier log's notation, e.g. `r1 = *(u32 *)(r2 +4)`, `if w1 > 0x10 goto pc+3`.
 * `next` is the second half of an ld_imm64.
 */
export function disassemble(insn: RawInsn, next?: RawInsn): string {
  const { code, dst, src, off, imm } = insn;
  const cls = code & 0x07;
  switch (cls) {
    case CLS.ALU:
    case CLS.ALU64: {
      const r = cls === CLS.ALU64 ? 'r' : 'w';
      const op = code & 0xf0;
      const x = (code & SRC_X) !== 0;
      const operand = x ? `${r}${src}` : `${imm}`;
      if (op === ALU.NEG) return `${r}${dst} = -${r}${dst}`;
      if (op === ALU.END) {
        if (cls === CLS.ALU64) return `r${dst} = bswap${imm} r${dst}`;
        return `r${dst} = ${x ? 'be' : 'le'}${imm} r${dst}`;
      }
      if (op === ALU.MOV && x && off !== 0) return `${r}${dst} = (s${off})${r}${src}`;
      if ((op === ALU.DIV || op === ALU.MOD) && off === 1) return `${r}${dst} s${op === ALU.DIV ? '/' : '%'}= ${operand}`;
      const sym = ALU_SYM[op];
      return sym ? `${r}${dst} ${sym} ${operand}` : `(${hex2(code)}) unknown`;
    }
    case CLS.JMP:
    case CLS.JMP32: {
      const op = code & 0xf0;
      const r = cls === CLS.JMP ? 'r' : 'w';
      if (op === JMP.JA) return cls === CLS.JMP ? `goto pc${signed(off)}` : `gotol pc${signed(imm)}`;
      if (op === JMP.CALL) {
        if (src === CALL_PSEUDO) return `call pc${signed(imm)}`;
        if (src === CALL_KFUNC) return `call kernel-function#${imm}`;
        return `call ${helperName(imm)}#${imm}`;
      }
      if (op === JMP.EXIT) return 'exit';
      if (op === JMP.JCOND) return `may_goto pc${signed(off)}`;
      const sym = JMP_SYM[op];
      if (!sym) return `(${hex2(code)}) unknown`;
      const operand = (code & SRC_X) !== 0 ? `${r}${src}` : `${imm}`;
      return `if ${r}${dst} ${sym} ${operand} goto pc${signed(off)}`;
    }
    case CLS.LD: {
      if (code === 0x18) {
        const hi = next ? next.imm >>> 0 : 0;
        const value = (BigInt(hi) << 32n) | BigInt(imm >>> 0);
        switch (src) {
          case PSEUDO.MAP_FD: return `r${dst} = map[fd:${imm}] ll`;
          case PSEUDO.MAP_VALUE: return `r${dst} = map[fd:${imm}][0]+${hi} ll`;
          case PSEUDO.FUNC: return `r${dst} = func pc${signed(imm)} ll`;
          case PSEUDO.MAP_IDX: return `r${dst} = map[idx:${imm}] ll`;
          case PSEUDO.MAP_IDX_VALUE: return `r${dst} = map[idx:${imm}][0]+${hi} ll`;
          case PSEUDO.BTF_ID: return `r${dst} = ksym[btf_id:${imm}] ll`;
          default: return `r${dst} = 0x${value.toString(16)} ll`;
        }
      }
      const mode = code & 0xe0;
      const sz = SIZE_NAME[code & 0x18] ?? '?';
      if (mode === MODE.ABS) return `r0 = *(${sz} *)skb[${imm}]`;
      if (mode === MODE.IND) return `r0 = *(${sz} *)skb[r${src} + ${imm}]`;
      return `(${hex2(code)}) unknown`;
    }
    case CLS.LDX: {
      const mode = code & 0xe0;
      if (mode === MODE.MEMSX) return `r${dst} = *(${SIZE_SX[code & 0x18] ?? '?'} *)(r${src} ${signed(off)})`;
      return `r${dst} = *(${SIZE_NAME[code & 0x18]} *)(r${src} ${signed(off)})`;
    }
    case CLS.ST:
      return `*(${SIZE_NAME[code & 0x18]} *)(r${dst} ${signed(off)}) = ${imm}`;
    case CLS.STX: {
      const sz = SIZE_NAME[code & 0x18];
      if ((code & 0xe0) !== MODE.ATOMIC) return `*(${sz} *)(r${dst} ${signed(off)}) = r${src}`;
      const r = (code & 0x18) === SIZE.DW ? 'r' : 'w';
      const at = `*(${sz} *)(r${dst} ${signed(off)})`;
      switch (imm) {
        case ATOMIC.XCHG: return `${r}${src} = xchg(${at}, ${r}${src})`;
        case ATOMIC.CMPXCHG: return `${r}0 = cmpxchg(${at}, ${r}0, ${r}${src})`;
        case ATOMIC.LOAD_ACQ: return `${r}${dst} = load_acquire((${sz} *)(r${src} ${signed(off)}))`;
        case ATOMIC.STORE_REL: return `store_release(${at}, ${r}${src})`;
        default: {
          const name: Record<number, string> = { 0x00: '+=', 0x40: '|=', 0x50: '&=', 0xa0: '^=' };
          const sym = name[imm & ~ATOMIC.FETCH];
          if (!sym) return `(${hex2(code)}) unknown atomic ${imm}`;
          if (imm & ATOMIC.FETCH) return `${r}${src} = atomic_fetch_${({ 0x00: 'add', 0x40: 'or', 0x50: 'and', 0xa0: 'xor' } as Record<number, string>)[imm & ~1]}(${at}, ${r}${src})`;
          return `lock ${at} ${sym} ${r}${src}`;
        }
      }
    }
    default:
      return `(${hex2(code)}) unknown`;
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/**
 * Why the kernel would refuse this instruction's encoding, in the verifier's words, or undefined when
 * it is well formed. Only the encoding is checked (opcode, reserved fields, register numbers), not
 * what the program does with it.
 */
export function encodingError(insn: RawInsn): string | undefined {
  const { code, dst, src, off, imm } = insn;
  const cls = code & 0x07;
  if (dst > 10) return `R${dst} is invalid`;
  if (src > 10) return `R${src} is invalid`;
  switch (cls) {
    case CLS.ALU:
    case CLS.ALU64: {
      const op = code & 0xf0;
      const x = (code & SRC_X) !== 0;
      const is64 = cls === CLS.ALU64;
      if (op > ALU.END) return `unknown opcode ${hex2(code)}`;
      if (op === ALU.NEG) {
        if (x || src !== 0 || off !== 0 || imm !== 0) return 'BPF_NEG uses reserved fields';
        break;
      }
      if (op === ALU.END) {
        if (src !== 0 || off !== 0 || (imm !== 16 && imm !== 32 && imm !== 64) || (is64 && x)) return 'BPF_END uses reserved fields';
        break;
      }
      if (op === ALU.MOV) {
        if (x) {
          if (imm !== 0) return 'BPF_MOV uses reserved fields';
          if (off !== 0 && off !== 8 && off !== 16 && !(is64 && off === 32)) return 'BPF_MOV uses reserved fields';
        } else if (src !== 0 || off !== 0) {
          return 'BPF_MOV uses reserved fields';
        }
        break;
      }
      if (x ? imm !== 0 : src !== 0) return 'BPF_ALU uses reserved fields';
      if (op === ALU.DIV || op === ALU.MOD) {
        if (off !== 0 && off !== 1) return 'BPF_ALU uses reserved fields';
        if (!x && imm === 0) return 'div by zero';
      } else if (off !== 0) {
        return 'BPF_ALU uses reserved fields';
      }
      if ((op === ALU.LSH || op === ALU.RSH || op === ALU.ARSH) && !x) {
        if (imm < 0 || imm >= (is64 ? 64 : 32)) return `invalid shift ${imm}`;
      }
      break;
    }
    case CLS.JMP:
    case CLS.JMP32: {
      const op = code & 0xf0;
      const x = (code & SRC_X) !== 0;
      if (op === JMP.CALL) {
        if (cls === CLS.JMP32 || x || off !== 0 || dst !== 0 || src > CALL_KFUNC) return 'BPF_CALL uses reserved fields';
        break;
      }
      if (op === JMP.EXIT) {
        if (cls === CLS.JMP32 || x || src !== 0 || dst !== 0 || off !== 0 || imm !== 0) return 'BPF_EXIT uses reserved fields';
        break;
      }
      if (op === JMP.JA) {
        if (x || src !== 0 || dst !== 0) return 'BPF_JA uses reserved fields';
        if (cls === CLS.JMP ? imm !== 0 : off !== 0) return 'BPF_JA uses reserved fields';
        break;
      }
      if (op === JMP.JCOND) {
        if (cls === CLS.JMP32 || x || src !== 0 || dst !== 0 || imm !== 0) return 'invalid may_goto';
        break;
      }
      if (op > JMP.JSLE) return `unknown opcode ${hex2(code)}`;
      if (x ? imm !== 0 : src !== 0) return 'BPF_JMP/JMP32 uses reserved fields';
      break;
    }
    case CLS.LD: {
      if (code === 0x18) break; // ld_imm64: checked with its second half
      const mode = code & 0xe0;
      const size = code & 0x18;
      if ((mode !== MODE.ABS && mode !== MODE.IND) || size === SIZE.DW) return `unknown opcode ${hex2(code)}`;
      if (dst !== 0 || off !== 0 || (mode === MODE.ABS && src !== 0)) return 'BPF_LD_[ABS|IND] uses reserved fields';
      break;
    }
    case CLS.LDX: {
      const mode = code & 0xe0;
      if (mode === MODE.MEM) {
        if (imm !== 0) return 'BPF_LDX uses reserved fields';
      } else if (mode === MODE.MEMSX) {
        if ((code & 0x18) === SIZE.DW) return `unknown opcode ${hex2(code)}`;
        if (imm !== 0) return 'BPF_LDX uses reserved fields';
      } else {
        return `unknown opcode ${hex2(code)}`;
      }
      break;
    }
    case CLS.ST:
      if ((code & 0xe0) !== MODE.MEM) return `unknown opcode ${hex2(code)}`;
      if (src !== 0) return 'BPF_ST uses reserved fields';
      break;
    case CLS.STX: {
      const mode = code & 0xe0;
      const size = code & 0x18;
      if (mode === MODE.MEM) {
        if (imm !== 0) return 'BPF_STX uses reserved fields';
      } else if (mode === MODE.ATOMIC) {
        const rmw = [0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, ATOMIC.XCHG, ATOMIC.CMPXCHG];
        if (imm === ATOMIC.LOAD_ACQ || imm === ATOMIC.STORE_REL) break;
        if (!rmw.includes(imm)) return `BPF_ATOMIC uses invalid atomic opcode ${hex2(imm)}`;
        if (size !== SIZE.W && size !== SIZE.DW) return 'invalid atomic operand size';
      } else {
        return `unknown opcode ${hex2(code)}`;
      }
      break;
    }
  }
  return undefined;
}

/** Where each function starts: instruction 0, and every target of a BPF-to-BPF call or ld_imm64 of a function. */
export function functionStarts(insns: Uint8Array): number[] {
  const starts = new Set([0]);
  for (let i = 0; i < insns.length / 8; i++) {
    const ins = readInsn(insns, i);
    if ((ins.code === 0x85 && ins.src === CALL_PSEUDO) || (ins.code === 0x18 && ins.src === PSEUDO.FUNC)) starts.add(i + ins.imm + 1);
    if (ins.code === 0x18) i++;
  }
  return [...starts].sort((a, b) => a - b);
}
