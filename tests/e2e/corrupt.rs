//! Every kind of bad payload decodes to its typed error, never a panic.

use chorus_avro::{DecodeError, EventType, OrderPlaced, PaymentFailed};
use chorus_tests::Stack;

#[tokio::test]
async fn each_kind_of_corrupt_payload_is_a_typed_error() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let codec = stack.codec(&topics, true);
    let good = codec
        .encode(&EventType::OrderPlaced.example("o-1"))
        .await
        .unwrap();
    let declined = codec
        .encode(&EventType::PaymentFailed.example("o-1"))
        .await
        .unwrap();

    assert_eq!(codec.decode(None).await, Err(DecodeError::Empty));
    assert_eq!(codec.decode(Some(b"")).await, Err(DecodeError::Empty));
    assert_eq!(
        codec.decode(Some(b"{\"order_id\":1}")).await,
        Err(DecodeError::WrongMagicByte(b'{'))
    );
    assert!(matches!(
        codec.decode(Some(&good[..3])).await,
        Err(DecodeError::Truncated(_))
    ));
    assert!(matches!(
        codec.decode(Some(&good[..good.len() / 2])).await,
        Err(DecodeError::Truncated(_))
    ));
    let mut unknown_id = good.clone();
    unknown_id[1..5].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
    assert_eq!(
        codec.decode(Some(&unknown_id)).await,
        Err(DecodeError::UnknownSchemaId(0x7fff_fff0))
    );
    assert_eq!(
        codec.decode_as::<OrderPlaced>(Some(&declined)).await,
        Err(DecodeError::WrongRecordType {
            expected: "OrderPlaced".into(),
            found: "PaymentFailed".into()
        })
    );
    // The good payloads still decode after all that.
    let placed = codec.decode_as::<OrderPlaced>(Some(&good)).await.unwrap();
    assert_eq!(placed.order_id, "o-1");
    let failed = codec
        .decode_as::<PaymentFailed>(Some(&declined))
        .await
        .unwrap();
    assert_eq!(failed.reason, "payment_declined");
}
