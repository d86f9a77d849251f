//! A map with a bound: what jetbridge remembers about users, channels, posts
//! and files is looked up again (or found in JetStream) when forgotten, so
//! every such memory keeps at most its bound, forgetting the oldest entry
//! first. A process that runs for weeks then holds the same memory on its
//! last day as after its first hour. The README's "Resources" lists them.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// At most `capacity` entries; inserting a new key past it forgets the one
/// inserted longest ago (first in, first out: cheap, and what a chat's
/// working set needs).
#[derive(Debug, Clone)]
pub struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    pub fn new(capacity: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key)
    }

    /// Insert or replace; a new key past the bound forgets the oldest.
    pub fn insert(&mut self, key: K, value: V) {
        if self.map.insert(key.clone(), value).is_some() {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    /// Keep only the entries `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.map.retain(|k, v| keep(k, v));
        let map = &self.map;
        self.order.retain(|k| map.contains_key(k));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_its_bound_it_forgets_the_oldest_and_never_grows() {
        let mut m = Bounded::new(3);
        for i in 0..10 {
            m.insert(i, i * 10);
            assert!(m.len() <= 3);
        }
        assert_eq!(m.get(&6), None);
        assert_eq!(m.get(&7), Some(&70));
        assert_eq!(m.get(&9), Some(&90));
        // Replacing a value keeps its place and the size.
        m.insert(7, 1);
        assert_eq!((m.len(), m.get(&7)), (3, Some(&1)));
        m.insert(10, 100);
        assert_eq!(m.get(&7), None, "7 was still the oldest");
        m.retain(|k, _| *k != 9);
        assert_eq!(m.len(), 2);
        m.insert(11, 0);
        m.insert(12, 0);
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(&8), None);
    }
}
