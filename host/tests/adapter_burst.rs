//! The cross-node adapter's driver under a burst, on a real Redis and a real Redis
//! Cluster started by the test: a consumer that does not keep up loses only what does
//! not fit its channel's queue, every message is counted by its fate (nothing silent),
//! the driver never panics, and a consumer that keeps up slowly within its bound gets
//! every message, in order.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use fred::prelude::*;
use futures::StreamExt;
use rtm_host::backend::RedisBackend;
use rtm_host::cluster::{AdapterMetrics, Outcome, ShardDriver};
use socketioxide_redis::drivers::Driver;
use support::{Redis, RedisCluster};

const DEADLINE: Duration = Duration::from_secs(30);

/// Until `metrics` has seen `n` messages in all (queued or dropped).
async fn until_seen(metrics: &AdapterMetrics, n: u64) {
    let start = Instant::now();
    let seen = || {
        [Outcome::Queued, Outcome::Full, Outcome::Lagged]
            .iter()
            .map(|o| metrics.count(*o))
            .sum::<u64>()
    };
    while seen() < n {
        assert!(start.elapsed() < DEADLINE, "saw {} of {n}", seen());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// SPUBLISHes `0..n` to `chan`, `batch` at a time in flight on one connection (so
/// Redis receives them in order).
async fn burst(redis: &RedisBackend, chan: &str, n: usize, batch: usize) {
    let all: Vec<usize> = (0..n).collect();
    let client = redis.pool.next();
    for chunk in all.chunks(batch) {
        let sends = chunk
            .iter()
            .map(|i| client.spublish::<i64, _, _>(chan.to_owned(), i.to_string()));
        for sent in futures::future::join_all(sends).await {
            sent.expect("SPUBLISH");
        }
    }
}

fn value(item: (String, Vec<u8>)) -> usize {
    String::from_utf8(item.1).unwrap().parse().unwrap()
}

async fn burst_to_a_slow_consumer(url: String) {
    let redis = RedisBackend::connect(&url, Duration::from_secs(2), 2, true)
        .await
        .expect("connect");
    let metrics = AdapterMetrics::default();
    let driver = ShardDriver::start(redis.subscriber().unwrap(), metrics.clone())
        .await
        .expect("subscriber");

    // A consumer that reads nothing while 2,000 arrive: 64 fit, the rest are counted.
    let mut stalled = driver.subscribe("burst-stalled".into(), 64).await.unwrap();
    burst(&redis, "burst-stalled", 2_000, 100).await;
    until_seen(&metrics, 2_000).await;
    assert_eq!(metrics.count(Outcome::Queued), 64);
    assert_eq!(metrics.count(Outcome::Full), 1_936);
    assert_eq!(metrics.count(Outcome::Lagged), 0);
    for want in 0..64 {
        assert_eq!(
            value(stalled.next().await.unwrap()),
            want,
            "the first 64, in order"
        );
    }

    // A consumer slower than the burst, within its bound: every message, in order.
    let mut paced = driver.subscribe("burst-paced".into(), 4_096).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < 3_000 {
            got.push(value(paced.next().await.unwrap()));
            if got.len() % 100 == 0 {
                // Slow: the adapter busy with other work between reads.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        got
    });
    burst(&redis, "burst-paced", 3_000, 200).await;
    let got = tokio::time::timeout(DEADLINE, reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, (0..3_000).collect::<Vec<_>>());
    assert_eq!(metrics.count(Outcome::Full), 1_936, "nothing more dropped");

    // The stalled channel still works once its consumer reads again.
    burst(&redis, "burst-stalled", 1, 1).await;
    assert_eq!(value(stalled.next().await.unwrap()), 0);
    let mut text = String::new();
    metrics.render(&mut text);
    assert!(
        text.contains("rtm_adapter_messages_total{outcome=\"dropped_full\"} 1936"),
        "{text}"
    );
}

#[tokio::test]
async fn burst_on_a_single_redis() {
    let redis = Redis::start();
    redis.assert_ours();
    burst_to_a_slow_consumer(redis.url()).await;
}

#[tokio::test]
async fn burst_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    cluster.assert_ours();
    burst_to_a_slow_consumer(cluster.url()).await;
}
