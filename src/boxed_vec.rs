//! Vecs and VecDeques that are one pointer while empty, for per-connection
//! fields that are empty while the connection is idle: memory per idle
//! connection is a design target (tokio's task cell grows in 128-byte
//! steps; glibc's chunks in 16-byte ones).
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};

/// A container with a static empty value to read through.
pub(crate) trait Empty: Default + 'static {
    fn empty() -> &'static Self;
}

impl<T: 'static> Empty for Vec<T> {
    fn empty() -> &'static Self {
        const { &Vec::new() }
    }
}

impl<T: 'static> Empty for VecDeque<T> {
    fn empty() -> &'static Self {
        const { &VecDeque::new() }
    }
}

/// Reads as an empty container without allocating; the box comes with the
/// first mutable use and goes when the whole thing is taken or dropped.
pub(crate) struct Boxed<C>(Option<Box<C>>);

pub(crate) type BoxedVec<T> = Boxed<Vec<T>>;

impl<C: Empty> Boxed<C> {
    pub fn into_inner(self) -> C {
        self.0.map_or_else(C::default, |b| *b)
    }
}

impl<T: 'static> BoxedVec<T> {
    /// The elements, without allocating when there are none.
    pub fn slice_mut(&mut self) -> &mut [T] {
        self.0.as_deref_mut().map_or(&mut [], |v| &mut v[..])
    }
}

impl<C> Default for Boxed<C> {
    fn default() -> Self {
        Boxed(None)
    }
}

impl<T> From<Vec<T>> for BoxedVec<T> {
    fn from(v: Vec<T>) -> Self {
        Boxed((v.capacity() > 0).then(|| Box::new(v)))
    }
}

impl<C: Empty> Deref for Boxed<C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.0.as_deref().unwrap_or(C::empty())
    }
}

impl<C: Empty> DerefMut for Boxed<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.0.get_or_insert_with(Default::default)
    }
}

/// For code that takes a Vec or a BoxedVec and writes to it (allocating).
impl<T: 'static> AsMut<Vec<T>> for BoxedVec<T> {
    fn as_mut(&mut self) -> &mut Vec<T> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::{Boxed, BoxedVec};
    use std::collections::VecDeque;

    #[test]
    fn empty_until_written_and_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<BoxedVec<u8>>(), std::mem::size_of::<usize>());
        let mut v = BoxedVec::<u8>::default();
        assert!(v.is_empty() && v.0.is_none());
        assert!(v.slice_mut().is_empty() && v.0.is_none());
        v.extend_from_slice(b"abc");
        assert_eq!(&v[..], b"abc");
        assert_eq!(std::mem::take(&mut v).into_inner(), b"abc");
        assert!(v.0.is_none());
        assert!(BoxedVec::from(Vec::<u8>::new()).0.is_none());
        assert_eq!(BoxedVec::from(vec![1u8]).into_inner(), [1]);
        let mut q = Boxed::<VecDeque<u32>>::default();
        assert!(q.is_empty() && q.0.is_none());
        q.push_back(7);
        assert_eq!(q.pop_front(), Some(7));
        assert!(q.0.is_some());
    }
}
