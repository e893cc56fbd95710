use super::*;

#[test]
fn cursors_print_parse_and_order() {
    let cursor = Cursor::new(12, 16_777_217, 3);
    assert_eq!(cursor.to_string(), "12.16777217.3");
    assert_eq!("12.16777217.3".parse::<Cursor>(), Ok(cursor));
    assert!(Cursor::new(12, 1, 9) < Cursor::new(12, 2, 0));
    assert!(Cursor::new(11, 9, 9) < Cursor::new(12, 0, 0));
    for bad in ["", "1.2", "1.2.3.4.5", "1.2.3.", "a.b.c", "-1.0.0", "1..2"] {
        assert!(bad.parse::<Cursor>().is_err(), "{bad}");
    }
    assert_eq!(Cursor::START.message_id(), None);
    assert_eq!(Cursor::START.part(), None);
    let json = serde_json::to_string(&cursor).expect("json");
    assert_eq!(json, "\"12.16777217.3\"");
    assert_eq!(serde_json::from_str::<Cursor>(&json).expect("back"), cursor);
}

#[test]
fn edited_cursors_carry_their_history_version_and_order_after_older_ones() {
    let edited = Cursor { history: 2, ..Cursor::new(5, 0, 0) };
    assert_eq!(edited.to_string(), "5.0.0.2");
    assert_eq!("5.0.0.2".parse::<Cursor>(), Ok(edited));
    // A rewrite moves the message position back, yet the cursor still grows.
    assert!(Cursor::new(90, 0, 0) < edited);
}

#[test]
fn turn_boundaries_enclose_every_part_of_their_turn() {
    let (start, end) = (Cursor::turn_start(3), Cursor::turn_end(3));
    let first_part = (3 << 24) + 1;
    assert!(start < (first_part, 0) && (first_part, i64::MAX) < end);
    assert!(Cursor::turn_end(2) < start && end < Cursor::turn_start(4));
}
