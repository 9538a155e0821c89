//! The harness itself: a throwaway server starts and isolates tests by database.

use snap2dsql_tests::{connect, pg};

#[tokio::test]
async fn throwaway_server_gives_each_test_its_own_database() {
    let a = pg().create_db("harness");
    let b = pg().create_db("harness");
    assert_ne!(a, b);
    let client = connect(&a).await;
    let row = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap();
    let name: String = row.get(0);
    assert_eq!(name, snap2dsql_tests::db_name(&a));
}
