/** The instruction set lives in src/asm; the emulator's modules import it from here. */
export * from '../asm/isa.js';
