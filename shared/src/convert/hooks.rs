//! Test-only faults in the converter (feature `test-hooks`, which only the integration tests
//! enable): a test arms one, loads, and checks that verification, whose export side does not use
//! this converter, reports the damage. Inert unless armed; armed by value, so tests running in
//! parallel are not disturbed.

use std::collections::HashSet;
use std::sync::Mutex;

static SHIFTED_YEARS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// From now on, dates of year `year` (as the text writes it, e.g. `1837`) convert one day late.
pub fn shift_dates_of_year(year: &str) {
    if let Ok(mut g) = SHIFTED_YEARS.lock() {
        g.get_or_insert_with(HashSet::new).insert(year.to_string());
    }
}

/// Undoes [`shift_dates_of_year`].
pub fn unshift_dates_of_year(year: &str) {
    if let Ok(mut g) = SHIFTED_YEARS.lock()
        && let Some(set) = g.as_mut()
    {
        set.remove(year);
    }
}

/// Days to add to the date `text` (1 when its year is armed).
pub(super) fn date_shift(text: &str) -> i64 {
    let year = text.split('-').next().unwrap_or_default();
    match SHIFTED_YEARS.lock() {
        Ok(g) if g.as_ref().is_some_and(|s| s.contains(year)) => 1,
        _ => 0,
    }
}
