//! Listing items, all or only those low or out of stock: pages in SKU order, a scan
//! budget per shard and page, and cursors that never skip an item.

use stockd_engine::{
    Command, Engine, EngineConfig, Query, QueryResult, ReserveRequest, SetItem, ShardState, Sku, StockFilter,
};

const T0: u64 = 1_700_000_000_000;

fn sku(i: usize) -> Sku {
    Sku::parse(&format!("sku-{i:03}"), "sku").unwrap()
}

/// Item i: onHand i % 7, low-stock threshold 2 (so low when available ≤ 2, out when 0).
fn set(i: usize) -> SetItem {
    SetItem {
        sku: sku(i),
        on_hand: (i % 7) as u64,
        low_stock_threshold: Some(2),
        max_per_order: None,
        expected_version: None,
        location: None,
        incoming: None,
    }
}

fn expected(n: usize, filter: StockFilter) -> Vec<Sku> {
    (0..n)
        .filter(|i| match filter {
            StockFilter::All => true,
            StockFilter::Low => i % 7 <= 2,
            StockFilter::Out => i % 7 == 0,
        })
        .map(sku)
        .collect()
}

#[test]
fn a_shard_stops_at_its_scan_budget_and_says_where() {
    let mut state = ShardState::new(0);
    for i in 0..30 {
        let s = set(i);
        let command = Command::SetItem(SetItem {
            sku: s.sku,
            on_hand: s.on_hand,
            low_stock_threshold: s.low_stock_threshold,
            max_per_order: None,
            expected_version: None,
            location: None,
            incoming: None,
        });
        state.apply(&command, T0).unwrap();
    }
    // Walk the shard with a budget of 4 items per page: every low item exactly once.
    let mut after = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let query = Query::ListItems { after: after.clone(), limit: 100, filter: StockFilter::Low, scan_budget: 4 };
        let QueryResult::Items { items, stopped_at } = state.query(&query).unwrap() else { panic!("not a listing") };
        assert!(items.len() <= 4);
        if let (Some(last), Some(stop)) = (items.last(), &stopped_at) {
            assert!(&last.sku <= stop, "matches never pass the stop");
        }
        seen.extend(items.into_iter().map(|i| i.sku));
        pages += 1;
        match stopped_at {
            Some(stop) => after = Some(stop),
            None => break,
        }
    }
    assert_eq!(seen, expected(30, StockFilter::Low));
    assert_eq!(pages, 8, "30 items, 4 looked at per page");
}

#[test]
fn filtered_pages_across_shards_list_every_match_once_in_order() {
    let engine =
        Engine::in_memory(EngineConfig { shards: 4, expiry_interval: None, ..EngineConfig::default() }).unwrap();
    let b = engine.blocking();
    for i in 0..60 {
        b.set_item(set(i)).unwrap();
    }
    // Sell out sku-004 (onHand 4) by reserving all of it: now out, and low.
    let reserve = ReserveRequest {
        order_id: stockd_engine::OrderId::parse("o-1", "orderId").unwrap(),
        lines: vec![(sku(4), 4)],
        ttl_secs: Some(600),
        metadata: None,
        placement: Default::default(),
    };
    b.reserve(reserve).unwrap();
    for (filter, limit) in
        [(StockFilter::All, 7), (StockFilter::Low, 5), (StockFilter::Out, 3), (StockFilter::Out, 100)]
    {
        let mut want = expected(60, filter);
        if filter != StockFilter::All {
            want.push(sku(4));
            want.sort();
        }
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = b.list_items_where(after, limit, filter).unwrap();
            assert!(page.items.len() <= limit);
            assert!(page.items.iter().all(|i| filter == StockFilter::All || filter.matches(i)));
            got.extend(page.items.into_iter().map(|i| i.sku));
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(got, want, "{filter:?} in pages of {limit}");
    }
    engine.shutdown();
}
