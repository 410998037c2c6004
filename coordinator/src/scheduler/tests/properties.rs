//! Every item exactly once, whatever order workers finish, replay or get lost in.

use super::*;

#[derive(Debug, Clone)]
enum Op {
    Attach(u32),
    Submit(Vec<u64>, u32),
    Complete(usize),
    Replay(usize),
    Lose(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u32..3).prop_map(Op::Attach),
        (proptest::collection::vec(0u64..3000, 1..6), 1u32..8)
            .prop_map(|(ns, s)| Op::Submit(ns, s)),
        any::<usize>().prop_map(Op::Complete),
        any::<usize>().prop_map(Op::Replay),
        any::<usize>().prop_map(Op::Lose),
    ]
}

proptest! {
    #[test]
    fn every_item_is_reported_exactly_once(ops in proptest::collection::vec(op(), 1..60)) {
        let mut s = Scheduler::new(SchedulerConfig::default());
        let mut comm = TestComm::default();
        let now = Instant::now();
        let mut jobs = Vec::new();
        let mut live_workers: Vec<WorkerId> = Vec::new();
        let mut outstanding: Vec<(WorkerId, Assignment)> = Vec::new();
        let mut finished: Vec<(WorkerId, Assignment)> = Vec::new();
        let mut leases_seen = HashSet::new();
        let mut lost = HashSet::new();
        for op in ops {
            match op {
                Op::Attach(slots) => live_workers.push(attach(&mut s, slots, now, &mut comm)),
                Op::Submit(ns, shards) => {
                    let list = ns.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
                    jobs.push(s.submit(sum_job(&list, shards), now, 0, &mut comm).unwrap());
                }
                Op::Complete(i) if !outstanding.is_empty() => {
                    let (w, a) = outstanding.remove(i % outstanding.len());
                    let d = complete(&mut s, &mut comm, w, &a);
                    // Only a lost worker's leases may be refused here.
                    prop_assert_eq!(d == Disposition::Discarded, lost.contains(&w));
                    finished.push((w, a));
                }
                Op::Replay(i) if !finished.is_empty() => {
                    let (w, a) = finished[i % finished.len()].clone();
                    prop_assert_eq!(complete(&mut s, &mut comm, w, &a), Disposition::Discarded);
                }
                Op::Lose(i) if !live_workers.is_empty() => {
                    let w = live_workers.remove(i % live_workers.len());
                    s.on_worker_lost(w, now, &mut comm);
                    lost.insert(w);
                }
                _ => {}
            }
            for (w, a) in comm.assigned.drain(..) {
                // A (shard, attempt) is never leased twice.
                prop_assert!(leases_seen.insert(a.lease), "lease {:?} handed out twice", a.lease);
                outstanding.push((w, a));
            }
        }
        // Drive everything to the end with one reliable worker.
        let w = attach(&mut s, 4, now, &mut comm);
        loop {
            outstanding.append(&mut comm.assigned);
            let Some(pos) = outstanding.iter().position(|(ow, _)| !lost.contains(ow)) else { break };
            let (ow, a) = outstanding.remove(pos);
            prop_assert_eq!(complete(&mut s, &mut comm, ow, &a), Disposition::Accepted);
        }
        let _ = w;
        for job in jobs {
            assert_exact(&s, &comm, job);
        }
    }
}
