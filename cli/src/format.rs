//! Output helpers: the `--format` template of `consume`, tables, the lag trend.

use kafka_sdk::consumer::Message;

/// Renders `msg` with a `--format` template (%t %p %o %k %s %h %T, \n \t, %%).
pub fn render(template: &str, msg: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let mut chars = template.chars().peekable();
    let mut utf8 = [0u8; 4];
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('t') => out.extend_from_slice(msg.topic().as_bytes()),
                Some('p') => out.extend_from_slice(msg.partition().to_string().as_bytes()),
                Some('o') => out.extend_from_slice(msg.offset().to_string().as_bytes()),
                Some('k') => out.extend_from_slice(msg.key().map(|k| &k[..]).unwrap_or_default()),
                Some('s') => out.extend_from_slice(msg.value().map(|v| &v[..]).unwrap_or_default()),
                Some('T') => out.extend_from_slice(msg.timestamp().to_string().as_bytes()),
                Some('h') => {
                    for (i, h) in msg.headers().iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(&h.key);
                        out.push(b'=');
                        out.extend_from_slice(h.value.as_deref().unwrap_or_default());
                    }
                }
                Some('%') => out.push(b'%'),
                Some(other) => {
                    out.push(b'%');
                    out.extend_from_slice(other.encode_utf8(&mut utf8).as_bytes());
                }
                None => out.push(b'%'),
            },
            '\\' => match chars.peek() {
                Some('n') => {
                    chars.next();
                    out.push(b'\n');
                }
                Some('t') => {
                    chars.next();
                    out.push(b'\t');
                }
                _ => out.push(b'\\'),
            },
            c => out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes()),
        }
    }
    out
}

/// One message as a JSON object.
pub fn message_json(msg: &Message) -> serde_json::Value {
    let text = |b: Option<&bytes::Bytes>| b.map(|b| String::from_utf8_lossy(b).into_owned());
    serde_json::json!({
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "timestamp": msg.timestamp(),
        "key": text(msg.key()),
        "value": text(msg.value()),
        "headers": msg.headers().iter().map(|h| serde_json::json!({
            "key": String::from_utf8_lossy(&h.key),
            "value": text(h.value.as_ref()),
        })).collect::<Vec<_>>(),
    })
}

/// Prints rows as a left-aligned table with a header line.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// A small trend of lag values (oldest first) as block characters, scaled to the largest.
pub fn sparkline(values: &[i64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    values
        .iter()
        .map(|v| BARS[((v.max(&0) * 7) / max) as usize])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_largest() {
        assert_eq!(sparkline(&[0, 7, 14]), "▁▄█");
        assert_eq!(sparkline(&[0, 0]), "▁▁");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(&["A", "BB"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    BB\nxyz  1\n");
    }
}
