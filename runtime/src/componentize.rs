//! Core modules built with the guest SDK for `wasm32-unknown-unknown` become components
//! here, at load time.

use wasmparser::{ExternalKind, Parser, Payload};

use super::LoadError;

/// Changes whenever `componentize` makes different components from the same module; part
/// of the compile cache's key.
pub(crate) const VERSION: u32 = 2;

/// Prefix of the exports wit-bindgen generates to free a call's results.
const POST_RETURN_PREFIX: &str = "cabi_post_";

/// True for a core WebAssembly module (header version 1), false for a component.
pub(crate) fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// Turns a core module built with the guest SDK (it carries its WIT world in a custom
/// section) into a component. Such a connector imports nothing but `logging`, which makes
/// the cheapest instances.
///
/// The module's post-return functions are dropped first. They free a call's results, but
/// every call gets a fresh instance that is thrown away afterwards, so freeing is wasted
/// work; and each one costs a function lookup at every instantiation.
pub(crate) fn componentize(module: &[u8]) -> Result<Vec<u8>, LoadError> {
    let module = without_post_returns(module)
        .map_err(|e| LoadError::Invalid(format!("a core module that cannot be read: {e}")))?;
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| {
            LoadError::Invalid(format!(
                "a core module that cannot be made a component: {e:#}"
            ))
        })
}

/// The module with its `cabi_post_*` exports removed and every other section kept as is.
fn without_post_returns(module: &[u8]) -> Result<Vec<u8>, wasmparser::BinaryReaderError> {
    let mut out = wasm_encoder::Module::new();
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload?;
        match &payload {
            Payload::ExportSection(reader) => {
                let mut exports = wasm_encoder::ExportSection::new();
                for export in reader.clone() {
                    let export = export?;
                    if export.kind == ExternalKind::Func
                        && export.name.starts_with(POST_RETURN_PREFIX)
                    {
                        continue;
                    }
                    exports.export(export.name, export.kind.into(), export.index);
                }
                out.section(&exports);
            }
            // The module's own header: the encoder writes it.
            Payload::Version { .. } | Payload::End(_) => {}
            other => {
                if let Some((id, range)) = other.as_section() {
                    out.section(&wasm_encoder::RawSection {
                        id,
                        data: &module[range.start as usize..range.end as usize],
                    });
                }
            }
        }
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_return_exports_are_dropped_and_the_rest_kept() {
        let module = wat_module();
        let stripped = without_post_returns(&module).unwrap();
        let names: Vec<String> = Parser::new(0)
            .parse_all(&stripped)
            .filter_map(|p| match p.unwrap() {
                Payload::ExportSection(r) => Some(
                    r.into_iter()
                        .map(|e| e.unwrap().name.to_string())
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(names, ["memory", "run"]);
        wasmparser::Validator::new()
            .validate_all(&stripped)
            .unwrap();
    }

    /// A module exporting a memory, a function and its post-return function.
    fn wat_module() -> Vec<u8> {
        let mut types = wasm_encoder::TypeSection::new();
        types.ty().function([], []);
        let mut funcs = wasm_encoder::FunctionSection::new();
        funcs.function(0);
        funcs.function(0);
        let mut memories = wasm_encoder::MemorySection::new();
        memories.memory(wasm_encoder::MemoryType {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        let mut exports = wasm_encoder::ExportSection::new();
        exports.export("memory", wasm_encoder::ExportKind::Memory, 0);
        exports.export("run", wasm_encoder::ExportKind::Func, 0);
        exports.export("cabi_post_run", wasm_encoder::ExportKind::Func, 1);
        let mut code = wasm_encoder::CodeSection::new();
        for _ in 0..2 {
            let mut f = wasm_encoder::Function::new([]);
            f.instruction(&wasm_encoder::Instruction::End);
            code.function(&f);
        }
        let mut module = wasm_encoder::Module::new();
        module
            .section(&types)
            .section(&funcs)
            .section(&memories)
            .section(&exports)
            .section(&code);
        module.finish()
    }
}
