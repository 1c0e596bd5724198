//! Classic BPF, the filter language of tcpdump and libpcap: `dsrlb ctl capture --filter EXPR`
//! has `tcpdump -ddd` compile the expression and the workers run the program on each frame of
//! a captured port. This is an interpreter of that instruction set (no JIT). A program is
//! checked once when it is loaded (`Program::new`): jumps only forward and inside it, every
//! path ends in a return, scratch memory in range, no division by a constant zero. Running it
//! then cannot loop, read out of bounds or panic: a load past the frame ends the program with
//! 0 (no match), as in the kernel.

/// One instruction, as `tcpdump -ddd` prints it: code, jump if true, jump if false, constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Most instructions a program may have (the kernel's limit).
pub const MAX_INSNS: usize = 4096;
const MEM_WORDS: usize = 16;

// Instruction classes and fields (linux/filter.h, pcap/bpf.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
// Class 0x07 is MISC: TAX and TXA.
const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
const MSH: u16 = 0xa0;
const K: u16 = 0x00;
const X: u16 = 0x08;
const A: u16 = 0x10;

/// A checked program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    insns: Vec<Insn>,
}

impl Program {
    /// Check `insns` and take them; the error says which instruction is wrong and why.
    pub fn new(insns: Vec<Insn>) -> Result<Program, String> {
        if insns.is_empty() || insns.len() > MAX_INSNS {
            return Err(format!("a filter has 1 to {MAX_INSNS} instructions, not {}", insns.len()));
        }
        let n = insns.len();
        for (pc, i) in insns.iter().enumerate() {
            let bad = |why: &str| {
                Err(format!("instruction {pc} ({:#06x} {} {} {}): {why}", i.code, i.jt, i.jf, i.k))
            };
            let class = i.code & 0x07;
            match class {
                LD | LDX => {
                    let size = i.code & 0x18;
                    let mode = i.code & 0xe0;
                    let ok = match (class, mode) {
                        (LD, ABS | IND) => matches!(size, W | H | B),
                        (LD, IMM | LEN) => size == W,
                        (LDX, IMM | LEN) => size == W,
                        (LDX, MSH) => size == B,
                        (_, MEM) => size == W && (i.k as usize) < MEM_WORDS,
                        _ => false,
                    };
                    if !ok {
                        return bad("unknown load");
                    }
                }
                ST | STX => {
                    if i.code & !0x07 != 0 || i.k as usize >= MEM_WORDS {
                        return bad("store outside scratch memory");
                    }
                }
                ALU => {
                    let op = i.code & 0xf0;
                    if !matches!(
                        op,
                        0x00 | 0x10 | 0x20 | 0x30 | 0x40 | 0x50 | 0x60 | 0x70 | 0x80 | 0x90 | 0xa0
                    ) {
                        return bad("unknown arithmetic");
                    }
                    if matches!(op, 0x30 | 0x90) && i.code & X == 0 && i.k == 0 {
                        return bad("division by zero");
                    }
                }
                JMP => {
                    let op = i.code & 0xf0;
                    let (t, f) = if op == 0x00 {
                        (i.k as usize, i.k as usize)
                    } else if matches!(op, 0x10 | 0x20 | 0x30 | 0x40) {
                        (i.jt as usize, i.jf as usize)
                    } else {
                        return bad("unknown jump");
                    };
                    if pc + 1 + t.max(f) >= n {
                        return bad("jump past the end");
                    }
                }
                RET => {
                    if !matches!(i.code & 0x18, K | A) {
                        return bad("unknown return");
                    }
                }
                _ => {
                    // MISC: TAX (0x00) and TXA (0x80) only.
                    if !matches!(i.code & 0xf8, 0x00 | 0x80) {
                        return bad("unknown instruction");
                    }
                }
            }
        }
        // Jumps are forward only, so the last instruction is reached by falling through or by
        // a jump: it must return.
        if insns[n - 1].code & 0x07 != RET {
            return Err(format!("instruction {} must be a return", n - 1));
        }
        Ok(Program { insns })
    }

    /// Parse `tcpdump -ddd` output: a count line, then "code jt jf k" per line (also accepts
    /// the instructions joined by ';' with ',' or spaces between fields).
    pub fn parse(text: &str) -> Result<Program, String> {
        let mut lines = text.split(['\n', ';']).map(str::trim).filter(|l| !l.is_empty());
        let count: usize = lines.next().ok_or("empty filter")?.parse().map_err(|_| "no instruction count")?;
        let mut insns = Vec::with_capacity(count.min(MAX_INSNS));
        for (n, line) in lines.enumerate() {
            let f: Vec<u64> = line
                .split([' ', ','])
                .filter(|x| !x.is_empty())
                .map(|x| x.parse::<u64>().map_err(|_| format!("instruction {n}: {x:?} is not a number")))
                .collect::<Result<_, _>>()?;
            let [code, jt, jf, k] = f[..] else {
                return Err(format!("instruction {n}: four numbers expected"));
            };
            let narrow = |v: u64, max: u64| {
                if v <= max {
                    Ok(v)
                } else {
                    Err(format!("instruction {n}: {v} too large"))
                }
            };
            insns.push(Insn {
                code: narrow(code, 0xffff)? as u16,
                jt: narrow(jt, 0xff)? as u8,
                jf: narrow(jf, 0xff)? as u8,
                k: narrow(k, 0xffff_ffff)? as u32,
            });
        }
        if insns.len() != count {
            return Err(format!("the filter says {count} instructions and has {}", insns.len()));
        }
        Program::new(insns)
    }

    /// The same text `parse` reads.
    pub fn to_text(&self) -> String {
        let mut s = self.insns.len().to_string();
        for i in &self.insns {
            s.push_str(&format!(";{} {} {} {}", i.code, i.jt, i.jf, i.k));
        }
        s
    }

    /// Run the program on `pkt` (the frame from its Ethernet header): how many bytes to keep,
    /// 0 meaning "not this frame".
    pub fn run(&self, pkt: &[u8]) -> u32 {
        run(&self.insns, pkt)
    }

    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }
}

/// Run `insns` on `pkt`. Total on any instructions, checked or not: jumps only move forward,
/// loads are bounds-checked and scratch memory is indexed modulo its size, so it ends, and
/// without a panic (a worker copies a checked program into memory of its own and runs it here).
pub fn run(insns: &[Insn], pkt: &[u8]) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEM_WORDS];
    let mut pc = 0usize;
    let load = |at: u64, size: u16| -> Option<u32> {
        let at = usize::try_from(at).ok()?;
        let n = match size {
            W => 4,
            H => 2,
            _ => 1,
        };
        let b = pkt.get(at..at.checked_add(n)?)?;
        Some(b.iter().fold(0u32, |v, &byte| (v << 8) | byte as u32))
    };
    while let Some(i) = insns.get(pc) {
        pc += 1;
        let class = i.code & 0x07;
        match class {
            LD => {
                a = match i.code & 0xe0 {
                    ABS => match load(i.k as u64, i.code & 0x18) {
                        Some(v) => v,
                        None => return 0,
                    },
                    IND => match load(x as u64 + i.k as u64, i.code & 0x18) {
                        Some(v) => v,
                        None => return 0,
                    },
                    LEN => pkt.len() as u32,
                    MEM => mem[i.k as usize % MEM_WORDS],
                    _ => i.k,
                }
            }
            LDX => {
                x = match i.code & 0xe0 {
                    LEN => pkt.len() as u32,
                    MEM => mem[i.k as usize % MEM_WORDS],
                    MSH => match pkt.get(i.k as usize) {
                        Some(&b) => ((b & 0x0f) as u32) * 4,
                        None => return 0,
                    },
                    _ => i.k,
                }
            }
            ST => mem[i.k as usize % MEM_WORDS] = a,
            STX => mem[i.k as usize % MEM_WORDS] = x,
            ALU => {
                let v = if i.code & X != 0 { x } else { i.k };
                a = match i.code & 0xf0 {
                    0x00 => a.wrapping_add(v),
                    0x10 => a.wrapping_sub(v),
                    0x20 => a.wrapping_mul(v),
                    0x30 => match a.checked_div(v) {
                        Some(q) => q,
                        None => return 0,
                    },
                    0x40 => a | v,
                    0x50 => a & v,
                    0x60 => a.checked_shl(v).unwrap_or(0),
                    0x70 => a.checked_shr(v).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 => match a.checked_rem(v) {
                        Some(r) => r,
                        None => return 0,
                    },
                    _ => a ^ v,
                }
            }
            JMP => {
                let op = i.code & 0xf0;
                if op == 0x00 {
                    pc += i.k as usize;
                    continue;
                }
                let v = if i.code & X != 0 { x } else { i.k };
                let taken = match op {
                    0x10 => a == v,
                    0x20 => a > v,
                    0x30 => a >= v,
                    _ => a & v != 0,
                };
                pc += if taken { i.jt as usize } else { i.jf as usize };
            }
            RET => return if i.code & 0x18 == A { a } else { i.k },
            _ => {
                if i.code & 0xf8 == 0x80 {
                    a = x;
                } else {
                    x = a;
                }
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{client_tcp, sized_udp, CLIENT, TCPDUMP_TCP_DST_80, VIP_L2};

    #[test]
    fn a_tcpdump_filter_matches_what_it_says() {
        assert!(
            Program::parse(&TCPDUMP_TCP_DST_80.replacen("16;", "15;", 1)).is_err(),
            "count and text disagree"
        );
        let p = Program::parse(TCPDUMP_TCP_DST_80).expect("tcpdump's program");
        assert_eq!(p.run(&client_tcp(VIP_L2, 40000, 80, 0x02, b"")), 262144);
        assert_eq!(p.run(&client_tcp(VIP_L2, 80, 443, 0x02, b"")), 0, "source port 80 only");
        assert_eq!(p.run(&sized_udp(CLIENT, 40000, VIP_L2, 80, 64)), 0);
        assert_eq!(Program::parse(&p.to_text()), Ok(p));
    }

    #[test]
    fn loads_past_the_frame_do_not_match() {
        let p = Program::parse("2;32 0 0 1000;6 0 0 1").unwrap();
        assert_eq!(p.run(&[0u8; 64]), 0);
        let p = Program::parse("2;32 0 0 60;6 0 0 1").unwrap();
        assert_eq!(p.run(&[0u8; 64]), 1, "a word that fits");
        assert_eq!(p.run(&[0u8; 63]), 0, "a word one byte short");
    }

    #[test]
    fn unsafe_programs_are_refused() {
        for (text, why) in [
            ("0", "empty"),
            ("1;21 5 0 1", "jump past the end"),
            ("2;21 0 0 1;21 0 0 1", "no return at the end"),
            ("2;52 0 0 0;6 0 0 0", "division by constant zero"),
            ("2;2 0 0 16;6 0 0 0", "store outside memory"),
            ("2;96 0 0 99;6 0 0 0", "load outside memory"),
            ("2;255 0 0 0;6 0 0 0", "unknown code"),
            ("1;6 0 0 99999999999", "constant too large"),
        ] {
            assert!(Program::parse(text).is_err(), "{why}: {text}");
        }
        let long = format!("{};{}6 0 0 0", MAX_INSNS + 1, "0 0 0 0;".repeat(MAX_INSNS));
        assert!(Program::parse(&long).is_err(), "too long");
    }

    proptest::proptest! {
        /// Any instructions at all, checked or not, on any bytes: `run` returns (a worker runs
        /// its own copy of a checked program, so this is what keeps a torn copy harmless too).
        #[test]
        fn run_is_total(
            insns in proptest::collection::vec((0u16..0x100, 0u8.., 0u8.., 0u32..), 0..64),
            pkt in proptest::collection::vec(0u8.., 0..128),
        ) {
            let insns: Vec<Insn> = insns.into_iter().map(|(code, jt, jf, k)| Insn { code, jt, jf, k }).collect();
            let _ = run(&insns, &pkt);
            if let Ok(p) = Program::new(insns) {
                let _ = p.run(&pkt);
            }
        }
    }

    #[test]
    fn division_by_x_zero_ends_without_a_match() {
        // A = 7; X = 0; A /= X; return A
        let p = Program::parse("4;0 0 0 7;1 0 0 0;60 0 0 0;22 0 0 0").unwrap();
        assert_eq!(p.run(&[0u8; 64]), 0);
    }
}
