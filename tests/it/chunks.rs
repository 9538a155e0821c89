//! The chunk planner's cuts, pinned. Verification cannot see them by design (every row group is
//! loaded once, wherever the cuts fall, and verification reads every row group itself), so the
//! mutation run left the bounds' comparisons alive; these tests pin them: chunks are runs of
//! whole row groups that cover each file exactly once and stop before a row group would pass the
//! row or byte bound, and the default bounds keep a small file in one chunk.

use snap2dsql::chunk::{CHUNK_MAX_BYTES, plan_chunks, plan_chunks_with};
use snap2dsql::export::Export;
use snap2dsql::local_export::{LocalExportOptions, local_export};
use snap2dsql::mapping::Mapping;
use snap2dsql_tests::{connect, db_name, pg};

/// One file of 10 row groups of 100 rows.
async fn ten_row_groups() -> (Export, Mapping, tempfile::TempDir) {
    let src = pg().create_db("chunksrc");
    pg().psql(
        db_name(&src),
        "CREATE TABLE public.t (id serial PRIMARY KEY, body text); \
         INSERT INTO public.t (body) SELECT md5(g::text) FROM generate_series(1, 1000) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut opts = LocalExportOptions::new("chunks-export");
    opts.rows_per_file = 1000;
    opts.rows_per_row_group = 100;
    local_export(&connect(&src).await, dir.path(), &opts, &|_, _| {})
        .await
        .unwrap();
    let export = Export::open(dir.path().to_str().unwrap(), None)
        .await
        .unwrap();
    let mapping = snap2dsql::plan::plan(&export, None).await.unwrap().mapping;
    (export, mapping, dir)
}

/// (first row group, end row group, rows) of each chunk, checking they tile the file.
fn cuts(chunks: &[snap2dsql::chunk::Chunk]) -> Vec<(usize, usize, u64)> {
    let mut next = 0;
    for c in chunks {
        assert_eq!(c.row_group_start, next, "chunks tile the file: {chunks:#?}");
        assert!(c.row_group_end > c.row_group_start);
        assert_eq!(c.rows, c.row_group_rows.iter().sum::<u64>());
        assert_eq!(c.row_group_rows.len(), c.row_group_end - c.row_group_start);
        next = c.row_group_end;
    }
    assert_eq!(next, 10);
    chunks
        .iter()
        .map(|c| (c.row_group_start, c.row_group_end, c.rows))
        .collect()
}

#[tokio::test]
async fn chunks_stop_before_a_row_group_would_pass_a_bound() {
    let (export, mapping, _dir) = ten_row_groups().await;
    // Small files stay whole under the default bounds.
    assert_eq!(
        cuts(&plan_chunks(&export, &mapping).await.unwrap()),
        vec![(0, 10, 1000)]
    );
    // A row bound of 250 fits two row groups; exactly 200 still fits two; 199 fits one.
    let by_rows = |max| {
        let (e, m) = (&export, &mapping);
        async move { cuts(&plan_chunks_with(e, m, max, CHUNK_MAX_BYTES).await.unwrap()) }
    };
    let pairs: Vec<(usize, usize, u64)> = (0..5).map(|i| (2 * i, 2 * i + 2, 200)).collect();
    assert_eq!(by_rows(250).await, pairs);
    assert_eq!(by_rows(200).await, pairs);
    let ones: Vec<(usize, usize, u64)> = (0..10).map(|i| (i, i + 1, 100)).collect();
    assert_eq!(by_rows(199).await, ones);
    // A bound below one row group still makes progress: one row group a chunk.
    assert_eq!(by_rows(1).await, ones);
    // A byte bound of exactly three row groups' compressed bytes fits three.
    let file = &export.tables[0].files[0];
    let footer = export.footer(file).await.unwrap();
    let three: u64 = footer.row_groups[..3]
        .iter()
        .map(|r| r.compressed_bytes)
        .sum();
    let chunks = plan_chunks_with(&export, &mapping, u64::MAX, three)
        .await
        .unwrap();
    assert_eq!(cuts(&chunks)[0], (0, 3, 300));
    let chunks = plan_chunks_with(&export, &mapping, u64::MAX, three - 1)
        .await
        .unwrap();
    assert_eq!(cuts(&chunks)[0], (0, 2, 200));
}
