//! Small edits of pgworld's own SQL text (never of callers' input).

/// `sql` with every parameter `$n` as `$(n + offset)`, so that statements written with their
/// own `$1…` can run as parts of one. pgworld's statements carry no `$` in literals.
pub fn renumber(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn parameters_move_by_the_offset_and_nothing_else_changes() {
        assert_eq!(
            renumber("UPDATE t SET a = $3 WHERE k = $1 AND j = $12::smallint", 10),
            "UPDATE t SET a = $13 WHERE k = $11 AND j = $22::smallint"
        );
        assert_eq!(renumber("SELECT $1", 0), "SELECT $1");
        assert_eq!(renumber("SELECT 1 -- no parameters", 4), "SELECT 1 -- no parameters");
        assert_eq!(renumber("SELECT $", 2), "SELECT $");
    }
}
