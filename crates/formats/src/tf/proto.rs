//! The subset of TensorFlow's `graph.proto`, `node_def.proto`, `attr_value.proto`,
//! `tensor.proto`, `tensor_shape.proto` and `types.proto` that a frozen inference graph
//! needs, hand-written as prost messages so that no `protoc` runs at build time.
//!
//! Field numbers are TensorFlow's (proto3). Fields the reader never uses (devices, function
//! libraries, resource handles, complex values) are left out: prost skips unknown fields,
//! so files that carry them still decode.

/// `DataType` values the reader converts (`types.proto`).
pub mod dtype {
    /// 32-bit float.
    pub const FLOAT: i32 = 1;
    /// 64-bit float.
    pub const DOUBLE: i32 = 2;
    /// Signed 32-bit integer.
    pub const INT32: i32 = 3;
    /// Unsigned 8-bit integer.
    pub const UINT8: i32 = 4;
    /// Signed 16-bit integer.
    pub const INT16: i32 = 5;
    /// Signed 8-bit integer.
    pub const INT8: i32 = 6;
    /// Signed 64-bit integer.
    pub const INT64: i32 = 9;
    /// Boolean (one byte per value).
    pub const BOOL: i32 = 10;
    /// IEEE half precision.
    pub const HALF: i32 = 19;
}

/// A whole frozen graph: its nodes, in any order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphDef {
    /// The operations.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeDef>,
}

/// One operation: its op type, its inputs (`name`, `name:1`, `^control`) and attributes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeDef {
    /// Unique node name, e.g. `FeatureExtractor/MobilenetV2/Conv/Conv2D`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Operation, e.g. `Conv2D`.
    #[prost(string, tag = "2")]
    pub op: String,
    /// Inputs: `node`, `node:k` (output k) or `^node` (control dependency).
    #[prost(string, repeated, tag = "3")]
    pub input: Vec<String>,
    /// Attributes by name.
    #[prost(map = "string, message", tag = "5")]
    pub attr: std::collections::HashMap<String, AttrValue>,
}

/// An attribute value (one of several kinds).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttrValue {
    /// The value.
    #[prost(oneof = "attr_value::Value", tags = "1, 2, 3, 4, 5, 6, 7, 8")]
    pub value: Option<attr_value::Value>,
}

/// The kinds of [`AttrValue`].
pub mod attr_value {
    /// One attribute value.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// A list of values.
        #[prost(message, tag = "1")]
        List(super::ListValue),
        /// Bytes (strings such as `padding` = `SAME`).
        #[prost(bytes, tag = "2")]
        S(Vec<u8>),
        /// An integer.
        #[prost(int64, tag = "3")]
        I(i64),
        /// A float.
        #[prost(float, tag = "4")]
        F(f32),
        /// A boolean.
        #[prost(bool, tag = "5")]
        B(bool),
        /// A data type.
        #[prost(int32, tag = "6")]
        Type(i32),
        /// A shape.
        #[prost(message, tag = "7")]
        Shape(super::TensorShapeProto),
        /// A tensor (the value of a `Const`).
        #[prost(message, tag = "8")]
        Tensor(super::TensorProto),
    }
}

/// A list attribute (`strides`, `dilations`, ...).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListValue {
    /// Byte strings.
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub s: Vec<Vec<u8>>,
    /// Integers.
    #[prost(int64, repeated, tag = "3")]
    pub i: Vec<i64>,
    /// Floats.
    #[prost(float, repeated, tag = "4")]
    pub f: Vec<f32>,
    /// Booleans.
    #[prost(bool, repeated, tag = "5")]
    pub b: Vec<bool>,
    /// Data types.
    #[prost(int32, repeated, tag = "6")]
    pub r#type: Vec<i32>,
    /// Shapes.
    #[prost(message, repeated, tag = "7")]
    pub shape: Vec<TensorShapeProto>,
}

/// A shape: dimensions (size -1 = unknown) or an unknown rank.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// Dimensions, outermost first.
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<tensor_shape_proto::Dim>,
    /// The rank itself is unknown.
    #[prost(bool, tag = "3")]
    pub unknown_rank: bool,
}

/// Parts of [`TensorShapeProto`].
pub mod tensor_shape_proto {
    /// One dimension.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dim {
        /// Size (-1 = unknown).
        #[prost(int64, tag = "1")]
        pub size: i64,
        /// Optional name.
        #[prost(string, tag = "2")]
        pub name: String,
    }
}

/// A constant tensor: dtype, shape and data, either packed little-endian in
/// `tensor_content` or as a typed value list (a short list repeats its last value to fill
/// the shape, as TensorFlow's `Const` does).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// Element type (see [`dtype`]).
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    /// Shape.
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    /// Packed little-endian elements.
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    /// Half values, one per int32 (low 16 bits).
    #[prost(int32, repeated, tag = "13")]
    pub half_val: Vec<i32>,
    /// Float values.
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    /// Double values.
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    /// int32, int16, int8 and uint8 values.
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    /// int64 values.
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
    /// bool values.
    #[prost(bool, repeated, tag = "11")]
    pub bool_val: Vec<bool>,
}
