//! Keeps README.md's configuration-key table equal to the key table in `src/config/keys.rs`.
//! Regenerate with `UPDATE_README=1 cargo test --test readme_keys`.

use kafka_sdk::config::keys::{known_keys, Status};

fn render() -> String {
    let mut out =
        String::from("| key | aliases | default | used by | status |\n|---|---|---|---|---|\n");
    for k in known_keys() {
        let aliases = k
            .aliases
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let default = k.default.map(|d| format!("`{d}`")).unwrap_or_default();
        let mut users = Vec::new();
        if k.clients.producer {
            users.push("producer");
        }
        if k.clients.consumer {
            users.push("consumer");
        }
        if k.clients.admin {
            users.push("admin");
        }
        let users = if users.len() == 3 {
            "all".to_string()
        } else {
            users.join(", ")
        };
        let status = match &k.status {
            Status::Supported => "supported".to_string(),
            Status::Ignored { detail } => format!("accepted, no effect: {detail}"),
            Status::Partial { supported, detail } => {
                format!("only {}: {detail}", supported.join(", "))
            }
            Status::NotSupported { detail } => format!("not supported yet: {detail}"),
            _ => "see docs".to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            k.name,
            aliases,
            default.replace('|', "\\|"),
            users,
            status.replace('|', "\\|")
        ));
    }
    out
}

#[test]
fn readme_lists_every_config_key() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let (start, end) = ("<!-- keys:start -->\n", "<!-- keys:end -->");
    let a = readme
        .find(start)
        .expect("README lacks the keys:start marker")
        + start.len();
    let b = readme.find(end).expect("README lacks the keys:end marker");
    let table = render();
    if std::env::var("UPDATE_README").is_ok() {
        let updated = format!("{}{}{}", &readme[..a], table, &readme[b..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert_eq!(
        &readme[a..b],
        table,
        "README.md's key table is stale: run `UPDATE_README=1 cargo test --test readme_keys`"
    );
}
