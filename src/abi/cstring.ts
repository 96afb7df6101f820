/** C strings as the kernel reads and writes them: NUL-terminated UTF-8. One home for both directions. */

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

/** A NUL-terminated C string, as the kernel wants path names and licenses. */
export function cstr(text: string): Uint8Array {
  const enc = encoder.encode(text);
  const out = new Uint8Array(enc.length + 1);
  out.set(enc);
  return out;
}

/** Decodes a C string: UTF-8 up to the first NUL (or the whole array when there is none). */
export function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}
