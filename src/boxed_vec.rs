//! A Vec that is one pointer while empty, for per-connection fields that
//! are empty while the connection is idle: memory per idle connection is a
//! design target, and tokio's task cell grows in 128-byte steps.
use std::ops::{Deref, DerefMut};

/// Reads as an empty Vec without allocating; the box comes with the first
/// mutable use and goes when the whole thing is taken or dropped.
pub(crate) struct BoxedVec<T>(Option<Box<Vec<T>>>);

impl<T> BoxedVec<T> {
    pub fn into_vec(self) -> Vec<T> {
        self.0.map_or_else(Vec::new, |b| *b)
    }

    /// The elements, without allocating when there are none.
    pub fn slice_mut(&mut self) -> &mut [T] {
        self.0.as_deref_mut().map_or(&mut [], |v| &mut v[..])
    }
}

/// For code that takes a Vec or a BoxedVec and writes to it (allocating).
impl<T> AsMut<Vec<T>> for BoxedVec<T> {
    fn as_mut(&mut self) -> &mut Vec<T> {
        self
    }
}

impl<T> Default for BoxedVec<T> {
    fn default() -> Self {
        BoxedVec(None)
    }
}

impl<T> From<Vec<T>> for BoxedVec<T> {
    fn from(v: Vec<T>) -> Self {
        BoxedVec((v.capacity() > 0).then(|| Box::new(v)))
    }
}

impl<T> Deref for BoxedVec<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        self.0.as_deref().unwrap_or(const { &Vec::new() })
    }
}

impl<T> DerefMut for BoxedVec<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        self.0.get_or_insert_with(Default::default)
    }
}

#[cfg(test)]
mod tests {
    use super::BoxedVec;

    #[test]
    fn empty_until_written_and_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<BoxedVec<u8>>(), std::mem::size_of::<usize>());
        let mut v = BoxedVec::<u8>::default();
        assert!(v.is_empty() && v.0.is_none());
        v.extend_from_slice(b"abc");
        assert_eq!(&v[..], b"abc");
        assert_eq!(std::mem::take(&mut v).into_vec(), b"abc");
        assert!(v.0.is_none());
        assert!(BoxedVec::from(Vec::<u8>::new()).0.is_none());
        assert_eq!(BoxedVec::from(vec![1u8]).into_vec(), [1]);
    }
}
