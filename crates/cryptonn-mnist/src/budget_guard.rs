//! The rank budget between epochs of the paper's mode: how much of every
//! batch's master keys the server has spent, and whether another epoch fits.

use std::sync::{Arc, Mutex};

use cryptonn_fe::{Group, KeyId};
use cryptonn_protocol::{Budget, RemoteAuthority};

use super::learner::{GuardFn, lock};
use super::reader::{BatchFile, BatchKeys, Reader};
use super::report::BudgetMeter;

/// The most spent budgets over the master keys of the batches read so far.
pub fn budget_meter<G: Group>(
    server: &RemoteAuthority<G>,
    keys: &[Option<BatchKeys>],
) -> BudgetMeter {
    let budget = |id: KeyId| server.budget(id).ok().flatten();
    let most_spent = |side: &dyn Fn(&BatchKeys) -> Option<KeyId>| {
        keys.iter()
            .flatten()
            .filter_map(|k| side(k).and_then(budget))
            .max_by_key(|b: &Budget| b.rank)
    };
    BudgetMeter {
        rows: most_spent(&|k| Some(k.0)),
        cols: most_spent(&|k| k.1),
    }
}

/// Why the most spent budgets cannot serve epoch `epoch` (0-based), which
/// needs `need` more dimensions of every master key, if they cannot.
pub fn budget_spent(meter: &BudgetMeter, need: usize, epoch: usize) -> Option<String> {
    [("row-wise", meter.rows), ("column-wise", meter.cols)]
        .into_iter()
        .find_map(|(side, used)| used.filter(|u| !u.can_serve(need)).map(|u| (side, u)))
        .map(|(side, used)| {
            format!(
                "rank budget spent: epoch {} needs {need} more dimensions of a {side} master key, \
                 which has revealed {} of the {} allowed; rotate to fresh master keys \
                 (clients re-encrypt) to train on",
                epoch + 1,
                used.rank,
                used.limit
            )
        })
}

/// Before each epoch after the first: the most spent budgets over the
/// batches read so far (kept in `meters` for the report), and whether they
/// can serve another epoch, which asks every batch's master keys for up to
/// `need` more dimensions.
pub fn budget_guard<G: Group, F: BatchFile<G>>(
    need: usize,
    server: &Arc<RemoteAuthority<G>>,
    reader: &Arc<Mutex<Reader<G, F>>>,
    meters: &Arc<Mutex<Vec<BudgetMeter>>>,
) -> Box<GuardFn> {
    let (server, reader, meters) = (server.clone(), reader.clone(), meters.clone());
    Box::new(move |epoch| {
        let meter = budget_meter(&server, &lock(&reader).keys);
        let short = budget_spent(&meter, need, epoch);
        lock(&meters).push(meter);
        short
    })
}
