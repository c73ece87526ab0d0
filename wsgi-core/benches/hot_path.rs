//! The per-request hot path: routing among 1, 10 and 100 script aliases,
//! building the environ of a typical GET, and validating a response.

use std::hint::black_box;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use wsgi_config::directives::{ScriptAlias, UrlPattern};
use wsgi_config::DirSettings;
use wsgi_core::environ_build::{
    build_environ, server_port, AppNames, EnvironInputs, RequestStats, ServerFacts, Versions, WsgiFlags,
};
use wsgi_core::group::{application_group, GroupContext};
use wsgi_core::route::Router;
use wsgi_core::{ResponseSink, ResponseWriter};

/// A directory of scripts that removes itself.
struct Scripts(PathBuf);

impl Scripts {
    fn new(count: usize) -> Scripts {
        let dir = std::env::temp_dir().join(format!("wsgi-core-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        for i in 0..count {
            std::fs::write(dir.join(format!("app{i}.wsgi")), "").expect("script file");
        }
        Scripts(dir)
    }

    fn aliases(&self, count: usize) -> Vec<ScriptAlias> {
        (0..count).map(|i| alias(&format!("/app{i}"), &self.0.join(format!("app{i}.wsgi")))).collect()
    }
}

impl Drop for Scripts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn alias(url: &str, target: &Path) -> ScriptAlias {
    ScriptAlias::new(UrlPattern::Prefix(url.to_string()), target.display().to_string())
}

fn routing(c: &mut Criterion) {
    let scripts = Scripts::new(100);
    let mut group = c.benchmark_group("route");
    for count in [1usize, 10, 100] {
        let aliases = scripts.aliases(count);
        let router = Router::new(&aliases, true);
        // The last alias: every one before it is tried.
        let path = format!("/app{}/blog/2024/05/some-post", count - 1);
        assert!(router.resolve(&path).expect("routes").is_some());
        group.bench_with_input(BenchmarkId::from_parameter(count), &path, |b, path| {
            b.iter(|| router.resolve(black_box(path)))
        });
    }
    group.finish();
}

fn environ(c: &mut Criterion) {
    let head = wsgi_core::testing::typical_get("/app/blog/2024/05/some-post?page=2&sort=new");
    let aliases = [alias("/app", Path::new("/srv/app/app.wsgi"))];
    let router = Router::new(&aliases, true);
    let path = wsgi_core::route::normalize_path(head.raw_path()).expect("path");
    let split = router.split_path(&path).expect("split");
    let route = wsgi_core::route::RouteMatch {
        alias_index: split.alias_index,
        script_filename: split.target.clone(),
        script_name: wsgi_core::route::latin1(&split.script_name),
        path_info: wsgi_core::route::latin1(&split.rest),
    };
    let settings = DirSettings::default();
    let no_env = |_: &str| None;
    c.bench_function("environ/typical_get", |b| {
        b.iter(|| {
            let groups = GroupContext {
                server_hostname: "www.example.com",
                port: server_port(&head),
                request_host: head.header("host"),
                script_name: &route.script_name,
                case_sensitive: true,
                env: &no_env,
            };
            let application = application_group(settings.application_group.as_deref(), &groups);
            let inputs = EnvironInputs {
                head: black_box(&head),
                route: &route,
                settings: &settings,
                pass_authorization: None,
                router: Some(&router),
                server: ServerFacts {
                    server_hostname: "www.example.com",
                    document_root: "/var/www/html",
                    server_admin: None,
                    server_software: "Apache/2.4.62 (Debian) mod_wsgi/4.9.4 Python/3.11",
                    listener_host: "",
                    listener_port: 80,
                },
                names: AppNames {
                    process_group: "",
                    application_group: &application,
                    callable_object: "application",
                    request_handler: "wsgi-script",
                    handler_script: "",
                },
                flags: WsgiFlags::embedded(true, true),
                stats: RequestStats {
                    request_id: "AAAAAAAAAAAAAAAA",
                    request_start_us: 1_795_467_656_572_627,
                    script_start_us: 1_795_467_656_592_619,
                    thread_id: 1,
                    thread_requests: 0,
                    total_requests: 0,
                },
                versions: Versions { mod_wsgi: (4, 9, 4), apache: Some((2, 4, 62)) },
                daemon: None,
                content_filters: false,
            };
            build_environ(&inputs)
        })
    });
}

/// Discards everything.
struct NullSink;

impl ResponseSink for NullSink {
    fn send_head(&mut self, status: u16, reason: &str, headers: &[(String, String)]) -> io::Result<()> {
        black_box((status, reason, headers));
        Ok(())
    }

    fn send_body(&mut self, chunk: &[u8]) -> io::Result<()> {
        black_box(chunk);
        Ok(())
    }
}

fn response(c: &mut Criterion) {
    let body = vec![b'x'; 1024];
    let headers: Vec<(String, String)> = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", "1024"),
        ("Cache-Control", "no-cache"),
        ("Set-Cookie", "session=0123456789abcdef; Path=/; HttpOnly"),
        ("X-Frame-Options", "DENY"),
        ("Vary", "Accept-Encoding"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    c.bench_function("response/start_response_and_write", |b| {
        b.iter(|| {
            let mut sink = NullSink;
            let mut writer = ResponseWriter::new(&mut sink, false);
            writer.start_response(black_box("200 OK"), headers.clone(), false).expect("valid response");
            writer.write(black_box(&body)).expect("written");
            writer.finish().expect("finished")
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = routing, environ, response
}
criterion_main!(benches);
