// The three shapes a COCO/LVIS "segmentation" value takes: a list of polygons (flat x0,y0,x1,y1,...
// lists in pixel coordinates), a compressed RLE ({"size":[h,w],"counts":"..."}), or an uncompressed
// RLE ({"size":[h,w],"counts":[n0,n1,...]}, column-major runs starting with a run of zeros).
namespace Engine.Lvis;

public abstract record LvisSegmentation;

public sealed record PolygonSegmentation(IReadOnlyList<double[]> Polygons) : LvisSegmentation;

public sealed record CompressedRleSegmentation(int Height, int Width, string Counts) : LvisSegmentation;

public sealed record UncompressedRleSegmentation(int Height, int Width, long[] Counts) : LvisSegmentation;
