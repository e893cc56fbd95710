use super::*;

#[test]
fn cursors_print_parse_and_order() {
    let cursor = Cursor { message: 12, episode: 16_777_217, seq: 3 };
    assert_eq!(cursor.to_string(), "12.16777217.3");
    assert_eq!("12.16777217.3".parse::<Cursor>(), Ok(cursor));
    assert!(
        Cursor { message: 12, episode: 1, seq: 9 } < Cursor { message: 12, episode: 2, seq: 0 }
    );
    assert!(
        Cursor { message: 11, episode: 9, seq: 9 } < Cursor { message: 12, episode: 0, seq: 0 }
    );
    for bad in ["", "1.2", "1.2.3.4", "a.b.c", "-1.0.0", "1..2"] {
        assert!(bad.parse::<Cursor>().is_err(), "{bad}");
    }
    assert_eq!(Cursor::START.message_id(), None);
    assert_eq!(Cursor::START.part(), None);
    let json = serde_json::to_string(&cursor).expect("json");
    assert_eq!(json, "\"12.16777217.3\"");
    assert_eq!(serde_json::from_str::<Cursor>(&json).expect("back"), cursor);
}
