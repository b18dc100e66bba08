//! A heavy connector: the echo guest with many large functions nobody calls added, so
//! that compiling it takes seconds (as an 18 MB Python component does) while it stays a
//! valid connector, `echo`, that works as the plain echo guest does.

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{CodeSection, FunctionSection, Instruction, RawSection, TypeSection, ValType};
use wasmparser::{Parser, Payload};

/// The i64 locals of each added function; all stay live to its end.
const LOCALS: u32 = 48;

/// The echo guest's core module with `functions` added functions of `ops` operations each.
/// The same arguments give the same bytes.
pub fn heavy_echo(functions: u32, ops: u32) -> Vec<u8> {
    let echo = std::fs::read(crate::guest("echo")).expect("the echo guest is built");
    add_functions(&echo, functions, ops)
}

/// `module` with `functions` functions `(i32) -> i32` added, each `ops` operations long.
pub fn add_functions(module: &[u8], functions: u32, ops: u32) -> Vec<u8> {
    let mut out = wasm_encoder::Module::new();
    // The type index of the added functions: after the module's own types.
    let mut ty = 0;
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload.expect("a valid module");
        match payload {
            Payload::Version { .. } | Payload::End(_) => {}
            Payload::TypeSection(reader) => {
                let mut types = TypeSection::new();
                RoundtripReencoder
                    .parse_type_section(&mut types, reader)
                    .expect("types re-encode");
                ty = types.len();
                types.ty().function([ValType::I32], [ValType::I32]);
                out.section(&types);
            }
            Payload::FunctionSection(reader) => {
                let mut funcs = FunctionSection::new();
                RoundtripReencoder
                    .parse_function_section(&mut funcs, reader)
                    .expect("functions re-encode");
                for _ in 0..functions {
                    funcs.function(ty);
                }
                out.section(&funcs);
            }
            Payload::CodeSectionStart { range, .. } => {
                // The module's own bodies, copied; then the added ones.
                let mut code = CodeSection::new();
                let reader = wasmparser::CodeSectionReader::new(wasmparser::BinaryReader::new(
                    slice(module, &range),
                    range.start,
                ))
                .expect("a code section");
                for body in reader {
                    code.raw(body.expect("a function body").as_bytes());
                }
                for f in 0..functions {
                    code.function(&body(f, ops));
                }
                out.section(&code);
            }
            Payload::CodeSectionEntry(_) => {}
            other => {
                let (id, range) = other.as_section().expect("a section");
                out.section(&RawSection {
                    id,
                    data: slice(module, &range),
                });
            }
        }
    }
    out.finish()
}

/// The bytes of `module` in `range` (wasmparser's offsets are `u64`).
fn slice<'m>(module: &'m [u8], range: &std::ops::Range<u64>) -> &'m [u8] {
    &module[range.start as usize..range.end as usize]
}

/// A function `(i32) -> i32` of `ops` 64-bit operations over [`LOCALS`] locals, each seeded
/// from the argument (nothing folds to a constant) and all mixed into the result (nothing
/// is dead): Cranelift compiles and allocates registers for all of it.
fn body(seed: u32, ops: u32) -> wasm_encoder::Function {
    let mut f = wasm_encoder::Function::new([(LOCALS, ValType::I64)]);
    let local = |i: u32| 1 + i % LOCALS;
    for i in 0..LOCALS {
        f.instruction(&Instruction::LocalGet(0))
            .instruction(&Instruction::I64ExtendI32U)
            .instruction(&Instruction::I64Const(
                i64::from(seed) * 7919 + i64::from(i),
            ))
            .instruction(&Instruction::I64Add)
            .instruction(&Instruction::LocalSet(local(i)));
    }
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for _ in 0..ops {
        let (a, b, c) = (next(), next(), next());
        f.instruction(&Instruction::LocalGet(local(a)))
            .instruction(&Instruction::LocalGet(local(b)));
        f.instruction(&match c % 4 {
            0 => Instruction::I64Mul,
            1 => Instruction::I64Add,
            2 => Instruction::I64Xor,
            _ => Instruction::I64Rotl,
        });
        f.instruction(&Instruction::LocalSet(local(c >> 2)));
    }
    f.instruction(&Instruction::LocalGet(local(0)));
    for i in 1..LOCALS {
        f.instruction(&Instruction::LocalGet(local(i)))
            .instruction(&Instruction::I64Xor);
    }
    f.instruction(&Instruction::I32WrapI64)
        .instruction(&Instruction::End);
    f
}
