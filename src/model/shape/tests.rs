use super::*;

#[test]
fn health_paths_are_plain_url_paths_with_nothing_a_shell_reads() {
    for ok in [
        "/health",
        "/",
        "/api/v1/health-check",
        "/~site/ok.json",
        "/a:b@c!d+e,f=g",
        "/caf%C3%A9",
    ] {
        assert_eq!(health_path_problem(ok), None, "{ok}");
    }
    for bad in [
        "/health;touch${IFS}/x;#",
        "/h`id`",
        "/h$(id)",
        "/h|nc",
        "/h&&x",
        "/h'x'",
        "/h\"x\"",
        "/h>x",
        "/h<x",
        "/h x",
        "/h\tx",
        "/h\nx",
        "/h\\x",
        "/h*",
        "/h?x=1",
        "/h[1]",
        "/h#frag",
        "/h%zz",
        "/h%4",
        "/é",
        "health",
        "",
        "http://evil/",
    ] {
        assert!(health_path_problem(bad).is_some(), "{bad:?} passed");
    }
    let long = format!("/{}", "a".repeat(MAX_HEALTH_PATH_BYTES));
    assert!(health_path_problem(&long).unwrap().contains("at most 256"));
    assert_eq!(
        health_path_problem(&long[..MAX_HEALTH_PATH_BYTES]),
        None,
        "exactly the bound is fine"
    );
}

#[test]
fn image_references_follow_the_engine_grammar() {
    let digest = format!("sha256:{}", "a".repeat(64));
    for ok in [
        "nginx".to_string(),
        "nginx:1.27-alpine".into(),
        "library/nginx:latest".into(),
        "registry.example/storefront:4.2".into(),
        "localhost:5000/site".into(),
        "localhost/site".into(),
        "registry.example:443/team/app_v2:v1.0.0".into(),
        "my-registry.example/a/b/c".into(),
        "ghcr.io/org/image__x".into(),
        "a---b".into(),
        "[::1]:5000/site:1".into(),
        format!("nginx@{digest}"),
        format!("nginx:1.2@{digest}"),
        format!("registry.example:5000/app@{digest}"),
    ] {
        assert_eq!(image_reference_problem(&ok), None, "{ok}");
    }
    for bad in [
        "".to_string(),
        "Nginx".into(),
        "nginx:".into(),
        "nginx:.hidden".into(),
        "nginx:-x".into(),
        format!("nginx:{}", "t".repeat(129)),
        "nginx::1".into(),
        "-nginx".into(),
        "nginx-".into(),
        "ngi..nx".into(),
        "ngi___nx".into(),
        "a//b".into(),
        "/nginx".into(),
        "nginx/".into(),
        "ng inx".into(),
        "nginx;rm -rf".into(),
        "nginx$(id)".into(),
        "nginx\u{1b}".into(),
        "nginx@sha256:abc".into(),
        format!("nginx@sha256:{}", "A".repeat(64)),
        format!("nginx@md5:{}", "a".repeat(32)),
        "reg.example:port/app".into(),
        "-reg.example/app".into(),
        "reg_x.example/app".into(),
        format!("{}/app", "a".repeat(256)),
    ] {
        assert!(image_reference_problem(&bad).is_some(), "{bad:?} passed");
    }
}

#[test]
fn publish_addresses_are_unicast_addresses_of_a_host_or_every_address() {
    for (ok, canonical) in [
        ("127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("::", "::"),
        ("::1", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("192.168.1.10", "192.168.1.10"),
        ("2001:db8::5", "2001:db8::5"),
    ] {
        assert_eq!(publish_address(ok).as_deref(), Ok(canonical), "{ok}");
    }
    for bad in [
        "255.255.255.255",
        "224.0.0.1",
        "239.255.255.250",
        "ff02::1",
        "169.254.1.1",
        "fe80::1",
        "0.1.2.3",
        "240.0.0.1",
        "::ffff:127.0.0.1",
        "127.0.0.01",
        "localhost",
        "1.2.3.4:80",
        " 127.0.0.1",
    ] {
        assert!(publish_address(bad).is_err(), "{bad:?} passed");
    }
}

#[test]
fn colours_are_what_a_page_can_show() {
    for ok in [
        "#0f62fe",
        "#FFF",
        "#0f62fe80",
        "teal",
        "RebeccaPurple",
        "rgb(10, 20, 30)",
        "hsl(200 50% 40%)",
        "transparent",
    ] {
        assert_eq!(color_problem(ok), None, "{ok}");
    }
    for bad in [
        "#12",
        "#ggg",
        "blurple",
        "red; background: url(x)",
        "url(javascript:x)",
        "",
        "#0f62fe\u{1b}",
    ] {
        assert!(color_problem(bad).is_some(), "{bad:?} passed");
    }
}
