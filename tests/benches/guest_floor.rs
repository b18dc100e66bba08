//! The fresh-instance floor of the heavy guests (issue 22 item 6): what a Python or
//! JavaScript component is made of, and interleaved A/B of engine and pool settings on its
//! calls, in one process.
//!
//! `cargo bench -p tests --bench guest_floor` (after `./dev.sh test` installed the
//! JavaScript and Python tools). Environment:
//! - `MODE=stats`: print each component's core modules, memories, data, tables, element
//!   segments and start functions, and exit.
//! - `MODE=loop` (with `LANG=py|js|rust`, `OP=validate|handle`, `N`, `VARIANT`): run `N`
//!   calls back to back, for `perf stat` / `perf record` of one kind of call.
//! - `MODE=ab` (the default), `VARIANTS=a,b,…`, `LANGS=py,js,rust`, `ROUNDS`, `BATCH`:
//!   rounds of `BATCH` calls of each variant in turn (order rotated every round), per
//!   language and operation; prints each variant's median and range of the per-round
//!   means.
//!
//! Compiled components are cached under `target/guest-floor-cache` (one compilation per
//! engine configuration), so a rerun starts in seconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use runtime::types::{Context, WebhookRequest};
use runtime::{CacheKey, Limits, LoadedConnector, PoolingAllocationConfig, Runtime, Tuning};
use sha2::Sha256;

/// The host binary's allocator, so the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn env_n(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The settings tried, by name: each changes the host's engine configuration or its
/// pools' (both pools).
fn variant(name: &str) -> Tuning {
    let pool = |f: fn(&mut PoolingAllocationConfig)| Tuning {
        pool: Box::new(f),
        ..Tuning::default()
    };
    let config = |f: fn(&mut runtime::Config)| Tuning {
        config: Box::new(f),
        ..Tuning::default()
    };
    match name {
        "host" | "spares" => Tuning::default(),
        "keep0" => pool(|p| {
            p.linear_memory_keep_resident(0);
        }),
        "keep16m" => pool(|p| {
            p.linear_memory_keep_resident(16 << 20);
        }),
        "keep64m" => pool(|p| {
            p.linear_memory_keep_resident(64 << 20);
        }),
        "tablekeep0" => pool(|p| {
            p.table_keep_resident(0);
        }),
        "tablekeep64k" => pool(|p| {
            p.table_keep_resident(64 << 10);
        }),
        "tablekeep1m" => pool(|p| {
            p.table_keep_resident(1 << 20);
        }),
        "noscan" => pool(|p| {
            p.pagemap_scan(runtime::Enabled::No);
        }),
        "batch16" => pool(|p| {
            p.decommit_batch_size(16);
        }),
        "nocow" => config(|c| {
            c.memory_init_cow(false);
        }),
        "dense" => config(|c| {
            c.memory_guaranteed_dense_image_size(64 << 20);
        }),
        "nolazytable" => config(|c| {
            c.table_lazy_init(false);
        }),
        "nobacktrace" => config(|c| {
            c.wasm_backtrace_max_frames(None).native_unwind_info(false);
        }),
        "noguard" => config(|c| {
            c.memory_reservation(64 << 20)
                .memory_guard_size(0)
                .memory_reservation_for_growth(0);
        }),
        "perfmap" => config(|c| {
            c.profiler(runtime::ProfilingStrategy::PerfMap);
        }),
        other => panic!("unknown variant {other}"),
    }
}

fn hmac(secret: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn request(headers: Vec<(&str, String)>, body: Vec<u8>) -> WebhookRequest {
    let mut all = vec![("content-type".to_string(), "application/json".to_string())];
    all.extend(headers.into_iter().map(|(k, v)| (k.to_string(), v)));
    WebhookRequest {
        method: "POST".into(),
        path: "/elements/api-v2/events/x".into(),
        query: String::new(),
        headers: all,
        body,
    }
}

fn context(config: &[(&str, &str)]) -> Context {
    Context {
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        credentials: None,
    }
}

/// A language's connector: its file, configuration and signed webhook.
struct Case {
    lang: &'static str,
    path: std::path::PathBuf,
    ctx: Context,
    request: WebhookRequest,
}

fn case(lang: &str) -> Case {
    let root = tests::js::repo();
    match lang {
        "rust" => Case {
            lang: "rust",
            path: tests::guest("ecwid"),
            ctx: context(&[
                ("ecwid.store.id", "1003"),
                ("ecwid.client.secret", "abcde123456789"),
            ]),
            request: request(
                vec![(
                    "x-ecwid-webhook-signature",
                    "lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X358=".into(),
                )],
                std::fs::read(root.join("tests/fixtures/ecwid/order-created.json")).unwrap(),
            ),
        },
        "js" => {
            let secret = "It's a Secret to Everybody";
            let body = std::fs::read(root.join("connectors/github-js/fixtures/issues-opened.json"))
                .unwrap();
            let sig = format!("sha256={}", hex(&hmac(secret, &body)));
            Case {
                lang: "js",
                path: tests::js::component().to_path_buf(),
                ctx: context(&[
                    ("github.webhook.secret", secret),
                    ("github.repository", "Codertocat/Hello-World"),
                ]),
                request: request(
                    vec![
                        ("x-github-event", "issues".into()),
                        (
                            "x-github-delivery",
                            "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
                        ),
                        ("x-hub-signature-256", sig),
                    ],
                    body,
                ),
            }
        }
        "py" => {
            let secret = "shpss_client_secret";
            let body =
                std::fs::read(root.join("connectors/shopify-py/fixtures/orders-create.json"))
                    .unwrap();
            let sig = {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(hmac(secret, &body))
            };
            Case {
                lang: "py",
                path: tests::python::shopify_example().to_path_buf(),
                ctx: context(&[
                    ("shopify.shop.domain", "jsmith.myshopify.com"),
                    ("shopify.client.secret", secret),
                ]),
                request: request(
                    vec![
                        ("x-shopify-topic", "orders/create".into()),
                        ("x-shopify-hmac-sha256", sig),
                        ("x-shopify-shop-domain", "jsmith.myshopify.com".into()),
                        (
                            "x-shopify-webhook-id",
                            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".into(),
                        ),
                    ],
                    body,
                ),
            }
        }
        other => panic!("unknown language {other}"),
    }
}

/// One call of `op` (`validate` or `handle`) in a fresh instance.
async fn call(c: &LoadedConnector, case: &Case, op: &str) {
    match op {
        "validate" => c.validate_config(&case.ctx.config).await.unwrap(),
        "handle" => {
            let events = c
                .verify_and_parse_webhook(&case.ctx, &case.request)
                .await
                .unwrap()
                .unwrap();
            assert!(!events.is_empty());
        }
        other => panic!("unknown op {other}"),
    }
}

fn runtime_of(name: &str) -> Arc<Runtime> {
    let dir = tests::js::repo().join("target/guest-floor-cache");
    let key = CacheKey::new([7; 32]);
    let runtime = Runtime::tuned(Limits::default(), Some((&dir, &key)), variant(name)).unwrap();
    runtime.set_spare_instances(name == "spares" || name.ends_with("+spares"));
    runtime
}

fn main() {
    // `cargo test --benches` passes no `--bench`: nothing to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mode = env("MODE", "ab");
    let langs = env("LANGS", "py,js,rust");
    let langs: Vec<&str> = langs.split(',').collect();
    if mode == "stats" {
        for lang in langs {
            let case = case(lang);
            println!("== {} ({})", case.lang, case.path.display());
            stats(&std::fs::read(&case.path).unwrap());
        }
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if mode == "phases" {
        let runtime = runtime_of(&env("VARIANT", "host"));
        let n = env_n("N", 300);
        for lang in langs {
            let case = case(lang);
            let bytes = std::fs::read(&case.path).unwrap();
            let c = rt.block_on(runtime.load(case.lang, &bytes)).unwrap();
            let mut phases: [Vec<Duration>; 4] = Default::default();
            let mut faults = 0;
            for i in 0..n + 50 {
                if i == 50 {
                    faults = minor_faults();
                }
                let (p, growths) = rt
                    .block_on(c.validate_config_phases(&case.ctx.config))
                    .unwrap();
                if i == 0 || i == n + 49 {
                    println!(
                        "{:<5} memory growths (instantiation's included): {} to {} bytes",
                        case.lang, growths.0, growths.1
                    );
                }
                if i >= 50 {
                    for (v, d) in phases.iter_mut().zip(p) {
                        v.push(d);
                    }
                }
            }
            println!(
                "{:<5} {:.0} minor page faults per call",
                case.lang,
                (minor_faults() - faults) as f64 / n as f64
            );
            let names = ["store", "instantiate", "call", "drop (reset)"];
            for (name, v) in names.iter().zip(&mut phases) {
                v.sort();
                println!(
                    "{:<5} {name:<14} median {:>7.1} µs  p10 {:>7.1}  p90 {:>7.1}",
                    case.lang,
                    v[v.len() / 2].as_secs_f64() * 1e6,
                    v[v.len() / 10].as_secs_f64() * 1e6,
                    v[v.len() * 9 / 10].as_secs_f64() * 1e6
                );
            }
        }
        return;
    }
    if mode == "loop" {
        let case = case(&env("LANG", "py"));
        let op = env("OP", "validate");
        let n = env_n("N", 2000);
        let runtime = runtime_of(&env("VARIANT", "host"));
        let bytes = std::fs::read(&case.path).unwrap();
        let c = rt.block_on(runtime.load(case.lang, &bytes)).unwrap();
        for _ in 0..50 {
            rt.block_on(call(&c, &case, &op));
        }
        let start = Instant::now();
        rt.block_on(async {
            for _ in 0..n {
                call(&c, &case, &op).await;
            }
        });
        let per = start.elapsed() / n as u32;
        eprintln!("{} {op}: {n} calls, {per:?} per call", case.lang);
        return;
    }

    if mode == "spaced" {
        spaced(&rt, &langs);
        return;
    }
    let variants = env("VARIANTS", "host,keep0");
    let variants: Vec<&str> = variants.split(',').collect();
    let rounds = env_n("ROUNDS", 15);
    let batch = env_n("BATCH", 200);
    let runtimes: Vec<Arc<Runtime>> = variants.iter().map(|v| runtime_of(v)).collect();
    for lang in langs {
        let case = case(lang);
        let bytes = std::fs::read(&case.path).unwrap();
        let loaded: Vec<Arc<LoadedConnector>> = runtimes
            .iter()
            .map(|r| rt.block_on(r.load(case.lang, &bytes)).unwrap())
            .collect();
        for op in ["validate", "handle"] {
            let run = |c: &LoadedConnector| {
                let start = Instant::now();
                rt.block_on(async {
                    for _ in 0..batch {
                        call(c, &case, op).await;
                    }
                });
                start.elapsed() / batch as u32
            };
            for c in &loaded {
                run(c);
            }
            let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
            for round in 0..rounds {
                for k in 0..variants.len() {
                    let i = (k + round) % variants.len();
                    times[i].push(run(&loaded[i]));
                }
            }
            for (name, t) in variants.iter().zip(&mut times) {
                t.sort();
                let us = |d: Duration| d.as_secs_f64() * 1e6;
                println!(
                    "{:<5} {op:<8} {name:<12} median {:>8.1} µs  range {:.1}–{:.1}",
                    case.lang,
                    us(t[t.len() / 2]),
                    us(t[0]),
                    us(t[t.len() - 1])
                );
            }
        }
    }
}

/// The latency of calls made `GAP_MS` apart (2 ms; idle time in which a spare instance is
/// made and a finished one reset), per variant (`VARIANTS`, default `host,spares`): each
/// call timed alone; per round the median call; printed, the median and range of the
/// rounds' medians.
fn spaced(rt: &tokio::runtime::Runtime, langs: &[&str]) {
    let variants = env("VARIANTS", "host,spares");
    let variants: Vec<&str> = variants.split(',').collect();
    let rounds = env_n("ROUNDS", 15);
    let batch = env_n("BATCH", 40);
    let gap = Duration::from_millis(env_n("GAP_MS", 2) as u64);
    let runtimes: Vec<Arc<Runtime>> = variants.iter().map(|v| runtime_of(v)).collect();
    for lang in langs {
        let case = case(lang);
        let bytes = std::fs::read(&case.path).unwrap();
        let loaded: Vec<Arc<LoadedConnector>> = runtimes
            .iter()
            .map(|r| rt.block_on(r.load(case.lang, &bytes)).unwrap())
            .collect();
        for op in ["validate", "handle"] {
            let run = |c: &LoadedConnector| {
                rt.block_on(async {
                    let mut t = Vec::with_capacity(batch);
                    for _ in 0..batch {
                        tokio::time::sleep(gap).await;
                        let start = Instant::now();
                        call(c, &case, op).await;
                        t.push(start.elapsed());
                    }
                    t.sort();
                    t[t.len() / 2]
                })
            };
            for c in &loaded {
                run(c);
            }
            let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
            for round in 0..rounds {
                for k in 0..variants.len() {
                    let i = (k + round) % variants.len();
                    times[i].push(run(&loaded[i]));
                }
            }
            for (name, t) in variants.iter().zip(&mut times) {
                t.sort();
                let us = |d: Duration| d.as_secs_f64() * 1e6;
                println!(
                    "{:<5} {op:<8} {name:<12} {}ms apart: median {:>8.1} µs  range {:.1}–{:.1}",
                    case.lang,
                    gap.as_millis(),
                    us(t[t.len() / 2]),
                    us(t[0]),
                    us(t[t.len() - 1])
                );
            }
        }
    }
}

/// The process's minor page faults so far (Linux).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command's closing parenthesis: state is the 3rd, minflt the 10th.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(7))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Prints what a component is made of: its core modules (memories, data, tables,
/// elements, start functions, imports, functions) and its core instances.
fn stats(bytes: &[u8]) {
    use wasmparser::{ElementItems, Parser, Payload};
    #[derive(Default, Debug)]
    struct Module {
        imports: u32,
        functions: u32,
        memories: Vec<u64>,
        tables: Vec<u64>,
        data_segments: u32,
        data_bytes: u64,
        passive_data: u32,
        element_segments: u32,
        element_items: u64,
        start: bool,
        exports: u32,
        code_bytes: u64,
        ref_funcs: u64,
        table_ops: u64,
    }
    let mut stack: Vec<Module> = Vec::new();
    let mut done: Vec<Module> = Vec::new();
    let (mut core_instances, mut canon, mut component_imports) = (0u32, 0u32, 0u32);
    let mut depth_components = 0u32;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.unwrap() {
            Payload::Version {
                encoding: wasmparser::Encoding::Module,
                ..
            } => stack.push(Module::default()),
            Payload::ComponentSection { .. } => depth_components += 1,
            Payload::End(_) => {
                if let Some(m) = stack.pop() {
                    done.push(m);
                }
            }
            Payload::ImportSection(r) => {
                if let Some(m) = stack.last_mut() {
                    m.imports += r.into_imports().count() as u32;
                }
            }
            Payload::FunctionSection(r) => stack.last_mut().unwrap().functions += r.count(),
            Payload::MemorySection(r) => {
                for mem in r {
                    let mem = mem.unwrap();
                    stack
                        .last_mut()
                        .unwrap()
                        .memories
                        .push(mem.initial * u64::from(mem.page_size()));
                }
            }
            Payload::TableSection(r) => {
                for t in r {
                    stack.last_mut().unwrap().tables.push(t.unwrap().ty.initial);
                }
            }
            Payload::DataSection(r) => {
                let m = stack.last_mut().unwrap();
                for d in r {
                    let d = d.unwrap();
                    m.data_segments += 1;
                    m.data_bytes += d.data.len() as u64;
                    if matches!(d.kind, wasmparser::DataKind::Passive) {
                        m.passive_data += 1;
                    }
                }
            }
            Payload::ElementSection(r) => {
                let m = stack.last_mut().unwrap();
                for e in r {
                    let e = e.unwrap();
                    m.element_segments += 1;
                    m.element_items += match e.items {
                        ElementItems::Functions(f) => f.count(),
                        ElementItems::Expressions(_, x) => x.count(),
                    } as u64;
                }
            }
            Payload::StartSection { .. } => stack.last_mut().unwrap().start = true,
            Payload::ExportSection(r) => {
                if let Some(m) = stack.last_mut() {
                    m.exports += r.count();
                }
            }
            Payload::CodeSectionStart { size, .. } => {
                stack.last_mut().unwrap().code_bytes += u64::from(size)
            }
            Payload::CodeSectionEntry(body) => {
                let m = stack.last_mut().unwrap();
                let mut ops = body.get_operators_reader().unwrap();
                while !ops.eof() {
                    match ops.read().unwrap() {
                        wasmparser::Operator::RefFunc { .. } => m.ref_funcs += 1,
                        wasmparser::Operator::TableSet { .. }
                        | wasmparser::Operator::TableInit { .. }
                        | wasmparser::Operator::TableGrow { .. } => m.table_ops += 1,
                        _ => {}
                    }
                }
            }
            Payload::InstanceSection(r) => core_instances += r.count(),
            Payload::ComponentCanonicalSection(r) => canon += r.count(),
            Payload::ComponentImportSection(r) => component_imports += r.count(),
            _ => {}
        }
    }
    println!(
        "{} core modules, {core_instances} core instance entries, {canon} canonical functions, \
         {component_imports} component imports, {depth_components} nested components",
        done.len()
    );
    for (i, m) in done.iter().enumerate() {
        println!(
            "  module {i}: {} imports, {} functions ({:.1} KB code), {} exports, memories {:?} B, \
             tables {:?}, data {} segments ({} passive) {:.1} KB, elements {} segments {} items, start {}, ref.func {}, table.set/init/grow {}",
            m.imports,
            m.functions,
            m.code_bytes as f64 / 1e3,
            m.exports,
            m.memories,
            m.tables,
            m.data_segments,
            m.passive_data,
            m.data_bytes as f64 / 1e3,
            m.element_segments,
            m.element_items,
            m.start,
            m.ref_funcs,
            m.table_ops
        );
    }
}
